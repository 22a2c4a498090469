/**
 * The TriDet student network (TriDet `libs/modeling/backbones.py`, `necks.py`, `meta_archs.py`),
 * composed from three registered parts (`model/registry.ts`) that the config names:
 *
 * - backbone `sgp` (`model/backbone.ts`): input projection, SGP stem and branch blocks with
 *   max-pool downsampling;
 * - neck `identity` (`model/neck.ts`): identity FPN with one LayerNorm per level;
 * - head `trident` (`model/head.ts`): heads shared over levels (classification with prior
 *   0.01, Trident start/end boundary heads on detached features, centre-offset regression head
 *   with a per-level scale).
 *
 * Heads run once over all levels: the levels are concatenated along time with `gap` zero rows
 * before, between and after them ({@linkcode Layout}). A gap of `numBins` rows makes every
 * kernel-3 conv and every Trident window (16 rows) see zeros outside its own level, exactly as
 * per-level zero padding would, while the convs become one matMul per layer for all levels.
 * Gap rows are re-zeroed after every head layer and masked out of every loss.
 *
 * Parameters are a flat record `name -> tensor`; the student's are `tf.Variable`s, the EMA
 * copy's are plain tensors. The same {@linkcode forward} serves both. Their names and order are
 * the backbone's, then the neck's, then the head's.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import type { Rng } from "../../lib/rng.ts";
import type { StudentConfig } from "./presets.ts";
import "./model/backbone.ts";
import "./model/neck.ts";
import "./model/head.ts";
import {
  concatValid,
  type ForwardBatch,
  type ForwardOutput,
  levelMasks,
  makeLayout,
} from "./model/layout.ts";
import { paramGetter, type ParamSpec } from "./model/params.ts";
import { modelParts } from "./model/registry.ts";

export { sgpKernel } from "./model/backbone.ts";
export { PRIOR_BIAS } from "./model/head.ts";
export {
  concatValid,
  type ForwardBatch,
  type ForwardOutput,
  type Layout,
  levelMasks,
  makeLayout,
} from "./model/layout.ts";
export type { ParamSpec } from "./model/params.ts";

/**
 * Every parameter of the student for `cfg` with `inDim` input features and `numClasses`:
 * the backbone's, the neck's and the head's, in that order. `opts.branches` overrides
 * `cfg.sgpBranches` for the SGP backbone.
 */
export function paramSpecs(
  cfg: StudentConfig,
  inDim: number,
  numClasses: number,
  opts: { branches?: boolean } = {},
): ParamSpec[] {
  const parts = modelParts(cfg);
  const out = [
    ...parts.backbone.specs(cfg, inDim, opts),
    ...parts.neck.specs(cfg),
    ...parts.head.specs(cfg, numClasses),
  ];
  const seen = new Set<string>();
  for (const p of out) {
    if (seen.has(p.name)) throw new Error(`student model: parameter ${p.name} is declared twice`);
    seen.add(p.name);
  }
  return out;
}

/** Number of scalars in `specs`. */
export function countParams(specs: ParamSpec[]): number {
  return specs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** Initial values of every parameter (host arrays), drawn from `rng` in spec order. */
export function initValues(specs: ParamSpec[], rng: Rng): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const p of specs) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    if (p.init === "const") a.fill(p.value ?? 0);
    else if (p.init === "uniform") {
      const bound = 1 / Math.sqrt(p.fanIn ?? 1);
      for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * bound;
    } else if ((p.std ?? 0) !== 0) {
      for (let i = 0; i < n; i++) a[i] = rng.normal() * p.std!;
    }
    out.set(p.name, a);
  }
  return out;
}

/**
 * Runs the network: backbone -> neck -> head of the parts `cfg` names. Call inside `tf.tidy` /
 * `tf.variableGrads`; every intermediate is tracked by the caller's scope.
 */
export function forward(
  params: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  batch: ForwardBatch,
  training: boolean,
): ForwardOutput {
  const parts = modelParts(cfg);
  const P = paramGetter(params);
  const bsz = batch.lens.length;
  const layout = makeLayout(batch.t0, cfg);
  const hostMasks = levelMasks(batch.lens, layout);
  const masks = hostMasks.map((m, l) => tf.tensor3d(m, [bsz, layout.lengths[l], 1]));
  const x = tf.tensor3d(batch.x, [bsz, batch.t0, batch.dim]);

  const feats = parts.backbone.forward(P, cfg, { x, masks, batch, layout }, training);
  if (feats.length !== cfg.levels) {
    throw new Error(`student model: the backbone gave ${feats.length} levels, want ${cfg.levels}`);
  }
  feats.forEach((f, l) => {
    const want = [bsz, layout.lengths[l], cfg.dim];
    if (f.shape.length !== 3 || f.shape.some((d, i) => d !== want[i])) {
      throw new Error(
        `student model: backbone level ${l} has shape [${f.shape}], want [${want}]`,
      );
    }
  });
  const F = parts.neck.forward(P, cfg, feats, { layout, bsz });
  const validHost = concatValid(batch.lens, layout);
  const valid = tf.tensor3d(validHost, [bsz, layout.total, 1]);
  return parts.head.forward(P, cfg, F, { layout, valid, bsz });
}
