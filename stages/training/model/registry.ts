/**
 * Name -> component registries of the student network, after ActionFormer/TriDet
 * `libs/modeling/models.py` (`register_backbone`, `register_neck`, `register_meta_arch`): each
 * part registers itself beside its definition (`backbone.ts`, `neck.ts`, `head.ts`), and the
 * config's `backbone` / `neck` / `head` names pick the parts (defaults `sgp`, `identity`,
 * `trident`: the TriDet student). A part fixes the names, shapes and order of its parameters;
 * {@linkcode modelParts} resolves a config to its three parts.
 *
 * The parts agree on one contract: the backbone returns `cfg.levels` features of shape
 * `[B, T0 / 2^l, cfg.dim]`; the neck turns them into the concatenated level layout
 * (`[B, Ltot, cfg.dim]`, zero gap rows, see `layout.ts`); the head maps that to
 * {@linkcode ForwardOutput}.
 *
 * @module
 */
import type { tf } from "../../../deps.ts";
import type { StudentConfig } from "../presets.ts";
import type { ForwardBatch, ForwardOutput, Layout } from "./layout.ts";
import type { ParamGetter, ParamSpec } from "./params.ts";

/** The config fields that name the parts (absent = the TriDet defaults). */
export interface ModelChoice {
  /** Backbone name in {@linkcode BACKBONES} (default `sgp`). */
  backbone?: string;
  /** Neck name in {@linkcode NECKS} (default `identity`). */
  neck?: string;
  /** Head name in {@linkcode HEADS} (default `trident`). */
  head?: string;
}

/** The default part names: the TriDet student. */
export const DEFAULT_PARTS: Readonly<Required<ModelChoice>> = {
  backbone: "sgp",
  neck: "identity",
  head: "trident",
};

/** What a backbone's forward receives besides its parameters. */
export interface BackboneInput {
  /** [B, T0, D] input features. */
  x: tf.Tensor;
  /** Per-level validity masks [B, T_l, 1] (level l = level 0 at stride 2^l). */
  masks: tf.Tensor[];
  /** The host batch (lengths, drop-path keep factors). */
  batch: ForwardBatch;
  /** The level layout of this batch. */
  layout: Layout;
}

/** A backbone: input features to one feature map per pyramid level. */
export interface Backbone {
  /** One line for listings. */
  description: string;
  /** Its parameters, in a fixed order; `opts.branches` overrides `cfg.sgpBranches` (SGP). */
  specs(cfg: StudentConfig, inDim: number, opts: { branches?: boolean }): ParamSpec[];
  /** `cfg.levels` tensors [B, T_l, cfg.dim]. Runs inside the caller's tf scope. */
  forward(
    P: ParamGetter,
    cfg: StudentConfig,
    input: BackboneInput,
    training: boolean,
  ): tf.Tensor[];
}

/** What a neck's forward receives besides its parameters and the backbone features. */
export interface NeckInput {
  /** The level layout of this batch. */
  layout: Layout;
  /** Batch size B. */
  bsz: number;
}

/** A neck: per-level features to the concatenated layout. */
export interface Neck {
  /** One line for listings. */
  description: string;
  /** Its parameters, in a fixed order. */
  specs(cfg: StudentConfig): ParamSpec[];
  /** [B, layout.total, cfg.dim], zero at gap rows. Runs inside the caller's tf scope. */
  forward(P: ParamGetter, cfg: StudentConfig, feats: tf.Tensor[], input: NeckInput): tf.Tensor;
}

/** What a head's forward receives besides its parameters and the neck output. */
export interface HeadInput {
  /** The level layout of this batch. */
  layout: Layout;
  /** [B, Ltot, 1] valid-point mask (returned as `valid`). */
  valid: tf.Tensor3D;
  /** Batch size B. */
  bsz: number;
}

/** A head: the concatenated features to classification, boundary and offset outputs. */
export interface Head {
  /** One line for listings. */
  description: string;
  /** Its parameters for `numClasses` classes, in a fixed order. */
  specs(cfg: StudentConfig, numClasses: number): ParamSpec[];
  /** Every output in the concatenated layout. Runs inside the caller's tf scope. */
  forward(P: ParamGetter, cfg: StudentConfig, feats: tf.Tensor, input: HeadInput): ForwardOutput;
}

/** Registered backbones by name. */
export const BACKBONES: Map<string, Backbone> = new Map();
/** Registered necks by name. */
export const NECKS: Map<string, Neck> = new Map();
/** Registered heads by name. */
export const HEADS: Map<string, Head> = new Map();

function register<T>(kind: string, map: Map<string, T>, name: string, part: T): void {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`${kind} name "${name}" is not a plain name`);
  if (map.has(name)) throw new Error(`${kind} "${name}" is already registered`);
  map.set(name, part);
}

/** Registers a backbone under `name` (an error if the name is taken). */
export function registerBackbone(name: string, part: Backbone): void {
  register("backbone", BACKBONES, name, part);
}

/** Registers a neck under `name` (an error if the name is taken). */
export function registerNeck(name: string, part: Neck): void {
  register("neck", NECKS, name, part);
}

/** Registers a head under `name` (an error if the name is taken). */
export function registerHead(name: string, part: Head): void {
  register("head", HEADS, name, part);
}

/** The three parts a config names. */
export interface ModelParts {
  /** The backbone (`cfg.backbone`, default `sgp`). */
  backbone: Backbone;
  /** The neck (`cfg.neck`, default `identity`). */
  neck: Neck;
  /** The head (`cfg.head`, default `trident`). */
  head: Head;
}

function pick<T>(kind: keyof ModelChoice, map: Map<string, T>, name: unknown): T {
  const n = name ?? DEFAULT_PARTS[kind];
  const part = typeof n === "string" ? map.get(n) : undefined;
  if (!part) {
    throw new Error(
      `student config: unknown ${kind} ${JSON.stringify(n)} (registered: ${
        [...map.keys()].join(", ")
      })`,
    );
  }
  return part;
}

/** The parts named by `cfg` (its optional `backbone` / `neck` / `head` fields). */
export function modelParts(cfg: StudentConfig): ModelParts {
  const c = cfg as StudentConfig & ModelChoice;
  return {
    backbone: pick("backbone", BACKBONES, c.backbone),
    neck: pick("neck", NECKS, c.neck),
    head: pick("head", HEADS, c.head),
  };
}
