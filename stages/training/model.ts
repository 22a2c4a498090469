/**
 * The TriDet student network (TriDet `libs/modeling/backbones.py`, `necks.py`, `meta_archs.py`):
 * input projection, SGP stem and branch blocks with max-pool downsampling, identity FPN with one
 * LayerNorm per level, and heads shared over
 * levels (classification with prior 0.01, Trident start/end boundary heads on detached
 * features, centre-offset regression head with a per-level scale).
 *
 * Heads run once over all levels: the levels are concatenated along time with `gap` zero rows
 * before, between and after them ({@linkcode Layout}). A gap of `numBins` rows makes every
 * kernel-3 conv and every Trident window (16 rows) see zeros outside its own level, exactly as
 * per-level zero padding would, while the convs become one matMul per layer for all levels.
 * Gap rows are re-zeroed after every head layer and masked out of every loss.
 *
 * Parameters are a flat record `name -> tensor`; the student's are `tf.Variable`s, the EMA
 * copy's are plain tensors. The same {@linkcode forward} serves both.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import type { Rng } from "../../lib/rng.ts";
import {
  conv1d,
  depthwiseConv1d,
  detach,
  gelu,
  groupNorm,
  layerNorm,
  matMul,
  maxPool3s2,
} from "./ops.ts";
import type { StudentConfig } from "./presets.ts";

/** A parameter's shape, initialisation and whether AdamW decays it. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** `uniform`: U(+-1/sqrt(fanIn)); `normal`: N(0, std^2); `const`: filled with `value`. */
  init: "uniform" | "normal" | "const";
  fanIn?: number;
  std?: number;
  value?: number;
  /** Weight decay applies (convolution weights only, `make_optimizer` in `train_utils.py`). */
  decay: boolean;
}

/** The classification prior bias -log((1 - 0.01) / 0.01) (`ClsHead` prior_prob 0.01). */
export const PRIOR_BIAS = -Math.log((1 - 0.01) / 0.01);

/** Kernel K of the SGP window-level depthwise conv: round((w+1)k), +1 if even (w = 1). */
export function sgpKernel(k: number): number {
  let kk = Math.round(2 * k);
  if (kk % 2 === 0) kk += 1;
  return kk;
}

/** Every parameter of the student for `cfg` with `inDim` input features and `numClasses`. */
export function paramSpecs(
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

/** Where each pyramid level sits in the concatenated head layout. */
export interface Layout {
  /** Level lengths T_l (T_0 = input length). */
  lengths: number[];
  /** Start row of each level in the concatenated layout. */
  offsets: number[];
  /** Zero rows before, between and after levels. */
  gap: number;
  /** Total rows of the concatenated layout. */
  total: number;
  /** Stride of each level (1, 2, 4, ...). */
  strides: number[];
}

/** The concatenated layout for an input of `t0` rows (t0 divisible by 2^(levels-1)). */
export function makeLayout(t0: number, cfg: Pick<StudentConfig, "levels" | "numBins">): Layout {
  const div = 2 ** (cfg.levels - 1);
  if (t0 % div !== 0) throw new Error(`input length ${t0} is not a multiple of ${div}`);
  const gap = Math.max(1, cfg.numBins);
  const lengths: number[] = [];
  const offsets: number[] = [];
  const strides: number[] = [];
  let pos = gap;
  for (let l = 0; l < cfg.levels; l++) {
    const len = t0 / 2 ** l;
    lengths.push(len);
    offsets.push(pos);
    strides.push(2 ** l);
    pos += len + gap;
  }
  return { lengths, offsets, gap, total: pos, strides };
}

/** Level masks of each item: level 0 = t < len; level l+1 = level l at even positions. */
export function levelMasks(lens: number[], layout: Layout): Float32Array[] {
  const b = lens.length;
  return layout.lengths.map((len, l) => {
    const m = new Float32Array(b * len);
    for (let i = 0; i < b; i++) {
      // m_l[t] = m_0[t * 2^l] = (t * 2^l < len_i)
      for (let t = 0; t < len; t++) m[i * len + t] = t * layout.strides[l] < lens[i] ? 1 : 0;
    }
    return m;
  });
}

/** Host-side inputs of one forward pass (built by the caller; turned into tensors here). */
export interface ForwardBatch {
  /** [B, T0, D] features (noise already added when training). */
  x: Float32Array;
  /** Valid rows per item (<= T0). */
  lens: number[];
  /** T0 (padded length). */
  t0: number;
  /** Input dimension D. */
  dim: number;
  /** Drop-path keep factors per branch block: [dp1 [B], dp2 [B]] (0 or 1/(1-p)); training only. */
  dropPath?: [Float32Array, Float32Array][];
}

/** Outputs in the concatenated layout. */
export interface ForwardOutput {
  /** [B, Ltot, K] classification logits (0 at padding and gaps). */
  cls: tf.Tensor3D;
  /** [B, Ltot, K] start-boundary logits. */
  start: tf.Tensor3D;
  /** [B, Ltot, K] end-boundary logits. */
  end: tf.Tensor3D;
  /** [B, Ltot, 2(B+1)] centre offsets (after scale and ReLU). */
  off: tf.Tensor3D;
  /** [B, Ltot, 1] valid-point mask. */
  valid: tf.Tensor3D;
}

/** Valid-point mask of the concatenated layout, host side ([B * Ltot]). */
export function concatValid(lens: number[], layout: Layout): Float32Array {
  const masks = levelMasks(lens, layout);
  const out = new Float32Array(lens.length * layout.total);
  for (let i = 0; i < lens.length; i++) {
    layout.lengths.forEach((len, l) => {
      out.set(masks[l].subarray(i * len, (i + 1) * len), i * layout.total + layout.offsets[l]);
    });
  }
  return out;
}

/**
 * Runs the network. Call inside `tf.tidy` / `tf.variableGrads`; every intermediate is
 * tracked by the caller's scope.
 */
export function forward(
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
