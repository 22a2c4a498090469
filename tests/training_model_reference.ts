/**
 * The student network as one monolithic `paramSpecs` + `forward`, frozen as it was before the
 * backbone / neck / head split (`stages/training/model/`). The seam test checks that the
 * composed network matches it bit for bit: the same parameter names, shapes, order and init,
 * and the same outputs and gradients. Do not edit it to follow later changes of the model.
 *
 * @module
 */
import { tf } from "../deps.ts";
import {
  conv1d,
  depthwiseConv1d,
  detach,
  gelu,
  groupNorm,
  layerNorm,
  matMul,
  maxPool3s2,
} from "../stages/training/ops.ts";
import type { StudentConfig } from "../stages/training/presets.ts";
import {
  concatValid,
  type ForwardBatch,
  type ForwardOutput,
  levelMasks,
  makeLayout,
  type ParamSpec,
  PRIOR_BIAS,
  sgpKernel,
} from "../stages/training/model.ts";

/** Every parameter of the student for `cfg` with `inDim` input features and `numClasses`. */
export function referenceParamSpecs(
  cfg: StudentConfig,
  inDim: number,
  numClasses: number,
  opts: { branches?: boolean } = {},
): ParamSpec[] {
  const c = cfg.dim;
  const out: ParamSpec[] = [];
  const ln = (p: string, n = c) => {
    out.push({ name: `${p}.g`, shape: [n], init: "const", value: 1, decay: false });
    out.push({ name: `${p}.b`, shape: [n], init: "const", value: 0, decay: false });
  };
  const bias = (name: string, n: number, value = 0) =>
    out.push({ name, shape: [n], init: "const", value, decay: false });
  let cin = inDim;
  for (let i = 0; i < cfg.embedLayers; i++) {
    out.push({
      name: `embed.${i}.w`,
      shape: [3 * cin, c],
      init: "uniform",
      fanIn: 3 * cin,
      decay: true,
    });
    ln(`embed.${i}.ln`);
    cin = c;
  }
  const branches = opts.branches ?? cfg.sgpBranches;
  const big = sgpKernel(cfg.sgpK);
  const sgp = (p: string, branch: boolean) => {
    ln(`${p}.ln`);
    if (branches) {
      const dw = (name: string, k: number) => {
        out.push({
          name: `${p}.${name}.w`,
          shape: [k, c],
          init: "normal",
          std: cfg.sgpInitStd,
          decay: true,
        });
        bias(`${p}.${name}.b`, c);
      };
      dw("fc", 1);
      dw("gfc", 1);
      dw("psi", 1);
      dw("convw", 1);
      dw("convkw", big);
    }
    ln(`${p}.gn`);
    out.push({
      name: `${p}.mlp1.w`,
      shape: [c, cfg.mlpDim],
      init: "uniform",
      fanIn: c,
      decay: true,
    });
    bias(`${p}.mlp1.b`, cfg.mlpDim);
    out.push({
      name: `${p}.mlp2.w`,
      shape: [cfg.mlpDim, c],
      init: "uniform",
      fanIn: cfg.mlpDim,
      decay: true,
    });
    bias(`${p}.mlp2.b`, c);
    if (branch) {
      out.push({ name: `${p}.dp1.s`, shape: [c], init: "const", value: 1e-4, decay: false });
      out.push({ name: `${p}.dp2.s`, shape: [c], init: "const", value: 1e-4, decay: false });
    }
  };
  for (let i = 0; i < cfg.stemBlocks; i++) sgp(`stem.${i}`, false);
  for (let i = 0; i < cfg.levels - 1; i++) sgp(`branch.${i}`, true);
  for (let l = 0; l < cfg.levels; l++) ln(`neck.${l}.ln`);
  const nOff = 2 * (cfg.numBins + 1);
  for (const h of ["cls", "start", "end", "reg"]) {
    for (let i = 0; i < cfg.headLayers; i++) {
      out.push({
        name: `head.${h}.${i}.w`,
        shape: [3 * c, c],
        init: "uniform",
        fanIn: 3 * c,
        decay: true,
      });
      ln(`head.${h}.${i}.ln`);
    }
    const n = h === "reg" ? nOff : numClasses;
    out.push({
      name: `head.${h}.out.w`,
      shape: [3 * c, n],
      init: "uniform",
      fanIn: 3 * c,
      decay: true,
    });
    bias(`head.${h}.out.b`, n, h === "reg" ? 0 : PRIOR_BIAS);
  }
  out.push({ name: "head.reg.scale", shape: [cfg.levels], init: "const", value: 1, decay: false });
  return out;
}

/**
 * Runs the network. Call inside `tf.tidy` / `tf.variableGrads`; every intermediate is
 * tracked by the caller's scope.
 */
export function referenceForward(
  params: Record<string, tf.Tensor>,
  cfg: StudentConfig,
  batch: ForwardBatch,
  training: boolean,
): ForwardOutput {
  const P = (n: string) => {
    const t = params[n];
    if (!t) throw new Error(`missing parameter ${n}`);
    return t;
  };
  const bsz = batch.lens.length;
  const layout = makeLayout(batch.t0, cfg);
  const hostMasks = levelMasks(batch.lens, layout);
  const masks = hostMasks.map((m, l) => tf.tensor3d(m, [bsz, layout.lengths[l], 1]));
  let x: tf.Tensor = tf.tensor3d(batch.x, [bsz, batch.t0, batch.dim]);

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
  // Identity FPN: one LN per level, no mask.
  const c = cfg.dim;
  const gapT = tf.zeros([bsz, layout.gap, c]);
  const parts: tf.Tensor[] = [gapT];
  feats.forEach((f, l) => {
    parts.push(layerNorm(f, P(`neck.${l}.ln.g`), P(`neck.${l}.ln.b`)));
    parts.push(gapT);
  });
  const F = tf.concat(parts, 1);
  const validHost = concatValid(batch.lens, layout);
  const valid = tf.tensor3d(validHost, [bsz, layout.total, 1]);
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
  const pair = (a: string, b: string, input: tf.Tensor): [tf.Tensor, tf.Tensor] => {
    const first = (h: string) => P(cfg.headLayers > 0 ? `head.${h}.0.w` : `head.${h}.out.w`);
    const wa = first(a);
    const wb = first(b);
    const y = conv1d(input, tf.concat([wa, wb], 1));
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
    valid: valid as tf.Tensor3D,
  };
}
