/**
 * The TriDet heads (TriDet `libs/modeling/meta_archs.py`: `PtTransformerClsHead`,
 * `PtTransformerRegHead`, and the Trident start/end boundary heads on detached features),
 * shared over levels and run once over the concatenated layout: classification with prior
 * 0.01, start/end boundary logits, and centre-offset regression with a per-level scale.
 * Gap rows are re-zeroed after every head layer. Registered as head `trident`.
 *
 * @module
 */
import { tf } from "../../../deps.ts";
import { conv1d, detach, layerNorm, matMul } from "../ops.ts";
import type { StudentConfig } from "../presets.ts";
import type { ForwardOutput } from "./layout.ts";
import { type ParamGetter, type ParamSpec, specBuilder } from "./params.ts";
import { type Head, type HeadInput, registerHead } from "./registry.ts";

/** The classification prior bias -log((1 - 0.01) / 0.01) (`ClsHead` prior_prob 0.01). */
export const PRIOR_BIAS: number = -Math.log((1 - 0.01) / 0.01);

/** Parameters of the Trident heads: `head.{cls,start,end,reg}.*` then `head.reg.scale`. */
export function tridentHeadSpecs(cfg: StudentConfig, numClasses: number): ParamSpec[] {
  const c = cfg.dim;
  const out: ParamSpec[] = [];
  const s = specBuilder(out);
  const nOff = 2 * (cfg.numBins + 1);
  for (const h of ["cls", "start", "end", "reg"]) {
    for (let i = 0; i < cfg.headLayers; i++) {
      s.uniform(`head.${h}.${i}.w`, [3 * c, c], 3 * c);
      s.ln(`head.${h}.${i}.ln`, c);
    }
    const n = h === "reg" ? nOff : numClasses;
    s.uniform(`head.${h}.out.w`, [3 * c, n], 3 * c);
    s.bias(`head.${h}.out.b`, n, h === "reg" ? 0 : PRIOR_BIAS);
  }
  s.bias("head.reg.scale", cfg.levels, 1);
  return out;
}

/** The Trident heads over the concatenated features `F` [B, Ltot, C]. */
export function tridentHeadForward(
  P: ParamGetter,
  cfg: StudentConfig,
  F: tf.Tensor,
  input: HeadInput,
): ForwardOutput {
  const { layout, valid } = input;
  const sepHost = new Float32Array(layout.total);
  layout.offsets.forEach((o, l) => sepHost.fill(1, o, o + layout.lengths[l]));
  const sep = tf.tensor3d(sepHost, [1, layout.total, 1]);

  // The first conv of two heads that read the same input is one matMul (shared im2col).
  const finish = (name: string, y: tf.Tensor) => {
    if (cfg.headLayers === 0) return tf.mul(tf.add(y, P(`head.${name}.out.b`)), valid);
    const ln = (i: number, v: tf.Tensor) =>
      tf.mul(
        tf.relu(
          layerNorm(tf.mul(v, valid), P(`head.${name}.${i}.ln.g`), P(`head.${name}.${i}.ln.b`)),
        ),
        sep,
      );
    let h = ln(0, y);
    for (let i = 1; i < cfg.headLayers; i++) h = ln(i, conv1d(h, P(`head.${name}.${i}.w`)));
    return tf.mul(conv1d(h, P(`head.${name}.out.w`), P(`head.${name}.out.b`)), valid);
  };
  const pair = (a: string, b: string, x: tf.Tensor): [tf.Tensor, tf.Tensor] => {
    const first = (h: string) => P(cfg.headLayers > 0 ? `head.${h}.0.w` : `head.${h}.out.w`);
    const wa = first(a);
    const wb = first(b);
    const y = conv1d(x, tf.concat([wa, wb], 1));
    const [ya, yb] = tf.split(y, [wa.shape[1] as number, wb.shape[1] as number], 2);
    return [finish(a, ya), finish(b, yb)];
  };
  const [cls, reg] = pair("cls", "reg", F);
  const [start, end] = pair("start", "end", detach(F));
  // Per-level scale, broadcast to the layout through a [Ltot, L] level one-hot matrix.
  const sel = new Float32Array(layout.total * cfg.levels);
  layout.offsets.forEach((o, l) => {
    for (let t = 0; t < layout.lengths[l]; t++) sel[(o + t) * cfg.levels + l] = 1;
  });
  const scaleVec = tf.reshape(
    matMul(
      tf.tensor2d(sel, [layout.total, cfg.levels]),
      tf.reshape(P("head.reg.scale"), [cfg.levels, 1]) as tf.Tensor2D,
    ),
    [1, layout.total, 1],
  );
  const off = tf.relu(tf.mul(reg, scaleVec));
  return {
    cls: cls as tf.Tensor3D,
    start: start as tf.Tensor3D,
    end: end as tf.Tensor3D,
    off: off as tf.Tensor3D,
    valid,
  };
}

/** The Trident heads as a registry part. */
export const TRIDENT_HEAD: Head = {
  description: "TriDet heads: cls (prior 0.01), Trident start/end, scaled centre offsets",
  specs: tridentHeadSpecs,
  forward: tridentHeadForward,
};

registerHead("trident", TRIDENT_HEAD);
