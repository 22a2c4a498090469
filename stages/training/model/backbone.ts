/**
 * The TriDet SGP backbone (TriDet `libs/modeling/backbones.py`, `SGPConvTransformer`; blocks
 * in `blocks.py`, `SGPBlock`): masked conv embedding with LayerNorm and ReLU, `stemBlocks` SGP
 * blocks at stride 1, then one max-pool (kernel 3, stride 2) + SGP block per further level.
 * Registered as backbone `sgp`.
 *
 * @module
 */
import { tf } from "../../../deps.ts";
import { conv1d, depthwiseConv1d, gelu, groupNorm, layerNorm, matMul, maxPool3s2 } from "../ops.ts";
import type { StudentConfig } from "../presets.ts";
import { type ParamGetter, type ParamSpec, specBuilder } from "./params.ts";
import { type Backbone, type BackboneInput, registerBackbone } from "./registry.ts";

/** Kernel K of the SGP window-level depthwise conv: round((w+1)k), +1 if even (w = 1). */
export function sgpKernel(k: number): number {
  let kk = Math.round(2 * k);
  if (kk % 2 === 0) kk += 1;
  return kk;
}

/** Parameters of the SGP backbone: `embed.*`, `stem.*`, `branch.*` in that order. */
export function sgpBackboneSpecs(
  cfg: StudentConfig,
  inDim: number,
  opts: { branches?: boolean } = {},
): ParamSpec[] {
  const c = cfg.dim;
  const out: ParamSpec[] = [];
  const s = specBuilder(out);
  let cin = inDim;
  for (let i = 0; i < cfg.embedLayers; i++) {
    s.uniform(`embed.${i}.w`, [3 * cin, c], 3 * cin);
    s.ln(`embed.${i}.ln`, c);
    cin = c;
  }
  const branches = opts.branches ?? cfg.sgpBranches;
  const big = sgpKernel(cfg.sgpK);
  const sgp = (p: string, branch: boolean) => {
    s.ln(`${p}.ln`, c);
    if (branches) {
      const dw = (name: string, k: number) => {
        out.push({
          name: `${p}.${name}.w`,
          shape: [k, c],
          init: "normal",
          std: cfg.sgpInitStd,
          decay: true,
        });
        s.bias(`${p}.${name}.b`, c);
      };
      dw("fc", 1);
      dw("gfc", 1);
      dw("psi", 1);
      dw("convw", 1);
      dw("convkw", big);
    }
    s.ln(`${p}.gn`, c);
    s.uniform(`${p}.mlp1.w`, [c, cfg.mlpDim], c);
    s.bias(`${p}.mlp1.b`, cfg.mlpDim);
    s.uniform(`${p}.mlp2.w`, [cfg.mlpDim, c], cfg.mlpDim);
    s.bias(`${p}.mlp2.b`, c);
    if (branch) {
      s.bias(`${p}.dp1.s`, c, 1e-4);
      s.bias(`${p}.dp2.s`, c, 1e-4);
    }
  };
  for (let i = 0; i < cfg.stemBlocks; i++) sgp(`stem.${i}`, false);
  for (let i = 0; i < cfg.levels - 1; i++) sgp(`branch.${i}`, true);
  return out;
}

/** The SGP backbone forward: one feature map [B, T_l, C] per level. */
export function sgpBackboneForward(
  P: ParamGetter,
  cfg: StudentConfig,
  input: BackboneInput,
  training: boolean,
): tf.Tensor[] {
  const { masks, batch } = input;
  const bsz = batch.lens.length;
  let x = input.x;
  // Embedding: masked conv (no bias) -> LN -> ReLU
  for (let i = 0; i < cfg.embedLayers; i++) {
    x = tf.mul(conv1d(x, P(`embed.${i}.w`)), masks[0]);
    x = tf.relu(layerNorm(x, P(`embed.${i}.ln.g`), P(`embed.${i}.ln.b`)));
  }
  const branches = cfg.sgpBranches;
  const sgp = (p: string, h: tf.Tensor, m: tf.Tensor, dp?: [Float32Array, Float32Array]) => {
    const z = layerNorm(h, P(`${p}.ln.g`), P(`${p}.ln.b`));
    let hh: tf.Tensor = z;
    if (branches) {
      const mean = tf.mean(z, 1, true);
      const phi = tf.relu(tf.add(tf.mul(mean, P(`${p}.gfc.w`)), P(`${p}.gfc.b`)));
      const inst = tf.mul(phi, tf.add(tf.mul(z, P(`${p}.fc.w`)), P(`${p}.fc.b`)));
      const psi = depthwiseConv1d(z, P(`${p}.psi.w`), P(`${p}.psi.b`));
      const win = tf.mul(
        psi,
        tf.add(
          depthwiseConv1d(z, P(`${p}.convw.w`), P(`${p}.convw.b`)),
          depthwiseConv1d(z, P(`${p}.convkw.w`), P(`${p}.convkw.b`)),
        ),
      );
      hh = tf.add(tf.add(inst, win), z);
    }
    const isBranch = p.startsWith("branch");
    const dropPath = (v: tf.Tensor, scale: string, keep?: Float32Array) => {
      if (!isBranch) return v;
      let r = tf.mul(v, P(scale));
      if (training && keep) r = tf.mul(r, tf.tensor3d(keep, [bsz, 1, 1]));
      return r;
    };
    let y = tf.add(tf.mul(h, m), dropPath(hh, `${p}.dp1.s`, dp?.[0]));
    const [b2, t2, c2] = y.shape;
    const g = groupNorm(y, cfg.gnGroups, P(`${p}.gn.g`), P(`${p}.gn.b`));
    let mlp = tf.add(
      matMul(tf.reshape(g, [b2 * t2, c2]) as tf.Tensor2D, P(`${p}.mlp1.w`) as tf.Tensor2D),
      P(`${p}.mlp1.b`),
    );
    mlp = gelu(mlp);
    mlp = tf.add(matMul(mlp as tf.Tensor2D, P(`${p}.mlp2.w`) as tf.Tensor2D), P(`${p}.mlp2.b`));
    y = tf.add(y, dropPath(tf.reshape(mlp, [b2, t2, c2]), `${p}.dp2.s`, dp?.[1]));
    return y;
  };
  for (let i = 0; i < cfg.stemBlocks; i++) x = sgp(`stem.${i}`, x, masks[0]);
  const feats: tf.Tensor[] = [x];
  for (let l = 1; l < cfg.levels; l++) {
    x = maxPool3s2(x);
    x = sgp(`branch.${l - 1}`, x, masks[l], batch.dropPath?.[l - 1]);
    feats.push(x);
  }
  return feats;
}

/** The SGP backbone as a registry part. */
export const SGP_BACKBONE: Backbone = {
  description: "TriDet SGP: conv embedding, SGP stem, max-pool + SGP block per level",
  specs: sgpBackboneSpecs,
  forward: sgpBackboneForward,
};

registerBackbone("sgp", SGP_BACKBONE);
