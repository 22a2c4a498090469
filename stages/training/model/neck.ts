/**
 * The identity FPN neck (TriDet `libs/modeling/necks.py`, `FPNIdentity`): one LayerNorm per
 * level, no mask, then the levels are laid out along time with zero gap rows (`layout.ts`).
 * Registered as neck `identity`.
 *
 * @module
 */
import { tf } from "../../../deps.ts";
import { layerNorm } from "../ops.ts";
import type { StudentConfig } from "../presets.ts";
import { type ParamGetter, type ParamSpec, specBuilder } from "./params.ts";
import { type Neck, type NeckInput, registerNeck } from "./registry.ts";

/** Parameters of the identity neck: `neck.{l}.ln` for every level. */
export function identityNeckSpecs(cfg: StudentConfig): ParamSpec[] {
  const out: ParamSpec[] = [];
  const s = specBuilder(out);
  for (let l = 0; l < cfg.levels; l++) s.ln(`neck.${l}.ln`, cfg.dim);
  return out;
}

/** Per-level LayerNorm, concatenated as gap, level 0, gap, level 1, ..., gap. */
export function identityNeckForward(
  P: ParamGetter,
  cfg: StudentConfig,
  feats: tf.Tensor[],
  input: NeckInput,
): tf.Tensor {
  const gapT = tf.zeros([input.bsz, input.layout.gap, cfg.dim]);
  const parts: tf.Tensor[] = [gapT];
  feats.forEach((f, l) => {
    parts.push(layerNorm(f, P(`neck.${l}.ln.g`), P(`neck.${l}.ln.b`)));
    parts.push(gapT);
  });
  return tf.concat(parts, 1);
}

/** The identity neck as a registry part. */
export const IDENTITY_NECK: Neck = {
  description: "FPN identity: one LayerNorm per level, levels concatenated with zero gaps",
  specs: identityNeckSpecs,
  forward: identityNeckForward,
};

registerNeck("identity", IDENTITY_NECK);
