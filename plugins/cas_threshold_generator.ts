/**
 * Example generator plugin: a plain class-activation-sequence (CAS) threshold localizer,
 * trained from video-level labels only. It is the simplest weakly-supervised baseline, in
 * plain TypeScript (no tfjs, nothing from FuSTAL-TS), small enough to read in one sitting.
 *
 * Model: per-class logistic regression on standardised snippet features,
 * `cas[t][c] = w_c . z_t + b_c`. Video logit of class c = mean of the top-k `cas[.][c]`
 * (k = ceil(T / topkDivisor)), trained with binary cross-entropy against the video's labels
 * (multiple-instance learning), Adam, one video per step, seeded shuffling.
 *
 * Proposals: for each class of a video (training videos: its video-level labels; test
 * videos: classes whose video probability is >= `classThreshold`, at least the best one), the
 * snippet probabilities `sigmoid(cas)`, smoothed by a moving average of `smooth` rows (noisy
 * single snippets otherwise split actions into fragments), are thresholded at each of
 * `thresholds`; every run of
 * consecutive snippets above a threshold is a proposal, scored by outer-inner contrast (mean
 * probability inside minus mean over flanks of a quarter of its length on each side), as in
 * CoLA-style generators. Test detections go through per-class NMS (`nmsIoU`); training
 * proposals keep their overlaps, which is what the prior filter feeds on.
 *
 * Options (`context.options`): `epochs` 20, `lr` 0.01, `topkDivisor` 8, `smooth` 3,
 * `thresholds` [0.3, 0.5, 0.7], `classThreshold` 0.5, `nmsIoU` 0.6.
 *
 * Use it: `deno run -A mod.ts --plugin plugins/cas_threshold_generator.ts --generator cas-threshold`
 *
 * @module
 */
import type {
  Dataset,
  Detection,
  GeneratorPlugin,
  GeneratorResult,
  StageContext,
  VideoMeta,
} from "../plugins.ts";

interface Options {
  epochs: number;
  lr: number;
  topkDivisor: number;
  smooth: number;
  thresholds: number[];
  classThreshold: number;
  nmsIoU: number;
}

function readOptions(o: Record<string, unknown>): Options {
  const num = (name: string, dflt: number, ok: (v: number) => boolean) => {
    const v = o[name] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
      throw new Error(`option ${name}: bad value ${JSON.stringify(v)}`);
    }
    return v;
  };
  const thresholds = o.thresholds ?? [0.3, 0.5, 0.7];
  if (
    !Array.isArray(thresholds) || thresholds.length === 0 ||
    thresholds.some((t) => typeof t !== "number" || !(t > 0 && t < 1))
  ) {
    throw new Error(
      `option thresholds: expected numbers in (0, 1), got ${JSON.stringify(thresholds)}`,
    );
  }
  return {
    epochs: num("epochs", 20, (v) => Number.isInteger(v) && v >= 0),
    lr: num("lr", 0.01, (v) => v > 0),
    topkDivisor: num("topkDivisor", 8, (v) => v >= 1),
    smooth: num("smooth", 3, (v) => Number.isInteger(v) && v >= 1),
    thresholds: thresholds as number[],
    classThreshold: num("classThreshold", 0.5, (v) => v >= 0 && v <= 1),
    nmsIoU: num("nmsIoU", 0.6, (v) => v > 0 && v <= 1),
  };
}

/** mulberry32: a tiny seeded generator, so the same seed gives the same model. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Logistic CAS model over D standardised features and C classes. */
class CasModel {
  w: Float64Array;
  b: Float64Array;
  mean: Float64Array;
  invStd: Float64Array;
  constructor(readonly dim: number, readonly classes: number) {
    this.w = new Float64Array(classes * dim);
    this.b = new Float64Array(classes);
    this.mean = new Float64Array(dim);
    this.invStd = new Float64Array(dim).fill(1);
  }

  /** Standardised features, T x D row-major. */
  standardise(data: Float32Array, length: number): Float64Array {
    const D = this.dim;
    const z = new Float64Array(length * D);
    for (let t = 0; t < length; t++) {
      for (let d = 0; d < D; d++) z[t * D + d] = (data[t * D + d] - this.mean[d]) * this.invStd[d];
    }
    return z;
  }

  /** cas[t * C + c]. */
  cas(z: Float64Array, length: number): Float64Array {
    const D = this.dim, C = this.classes;
    const out = new Float64Array(length * C);
    for (let t = 0; t < length; t++) {
      for (let c = 0; c < C; c++) {
        let s = this.b[c];
        const wo = c * D, zo = t * D;
        for (let d = 0; d < D; d++) s += this.w[wo + d] * z[zo + d];
        out[t * C + c] = s;
      }
    }
    return out;
  }
}

/** Indices of the k largest values of column c of a T x C matrix. */
function topkRows(cas: Float64Array, length: number, C: number, c: number, k: number): number[] {
  const idx = Array.from({ length }, (_, t) => t);
  idx.sort((a, b) => cas[b * C + c] - cas[a * C + c]);
  return idx.slice(0, k);
}

/** Seconds of grid row boundary g (a row's reference point is its start or its centre). */
function rowTime(meta: VideoMeta, g: number): number {
  const { fps, stride, offset } = meta.grid;
  // offset 0: rows start at g*stride (CoLA snippets); otherwise rows are centred there, so
  // a run's edge is half a row earlier.
  const shift = offset > 0 ? stride / 2 : 0;
  return (g * stride + offset - shift) / fps;
}

function iou(a: [number, number], b: [number, number]): number {
  const inter = Math.max(0, Math.min(a[1], b[1]) - Math.max(a[0], b[0]));
  const union = (a[1] - a[0]) + (b[1] - b[0]) - inter;
  return union > 0 ? inter / union : 0;
}

function nms(dets: Detection[], thr: number): Detection[] {
  const sorted = [...dets].sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const d of sorted) {
    if (kept.every((k) => k.label !== d.label || iou(k.segment, d.segment) < thr)) kept.push(d);
  }
  return kept;
}

/** Centred moving average of `width` rows (shrinking at the ends). */
function smoothInPlace(p: Float64Array, width: number): void {
  if (width <= 1) return;
  const src = p.slice();
  const h = Math.floor(width / 2);
  for (let t = 0; t < p.length; t++) {
    let s = 0, n = 0;
    for (let u = Math.max(0, t - h); u <= Math.min(p.length - 1, t + h); u++, n++) s += src[u];
    p[t] = s / n;
  }
}

/** Proposals of one class from snippet probabilities p (length T), one list per threshold. */
function runsToProposals(
  p: Float64Array,
  meta: VideoMeta,
  label: string,
  thresholds: number[],
): Detection[] {
  const T = p.length;
  const out: Detection[] = [];
  const mean = (a: number, b: number) => {
    let s = 0;
    for (let t = a; t < b; t++) s += p[t];
    return b > a ? s / (b - a) : 0;
  };
  for (const thr of thresholds) {
    let t = 0;
    while (t < T) {
      if (p[t] < thr) {
        t++;
        continue;
      }
      let e = t;
      while (e < T && p[e] >= thr) e++;
      const len = e - t;
      const m = Math.max(1, Math.round(len / 4));
      const outerL = mean(Math.max(0, t - m), t);
      const outerR = mean(e, Math.min(T, e + m));
      const nOuter = (t > 0 ? 1 : 0) + (e < T ? 1 : 0);
      const outer = nOuter ? (outerL + outerR) / nOuter : 0;
      const start = Math.max(0, rowTime(meta, t));
      const end = Math.min(meta.duration > 0 ? meta.duration : Infinity, rowTime(meta, e));
      if (end > start) {
        out.push({ videoId: meta.id, label, score: mean(t, e) - outer, segment: [start, end] });
      }
      t = e;
    }
  }
  return out;
}

async function generate(dataset: Dataset, ctx: StageContext): Promise<GeneratorResult> {
  const o = readOptions(ctx.options);
  const C = dataset.classes.length, D = dataset.featureDim;
  const train = dataset.list("train");
  const test = dataset.list("test");
  if (train.length === 0) throw new Error("the dataset has no training videos");
  const model = new CasModel(D, C);

  // Pass 1: per-feature mean and standard deviation over all training snippets.
  const sum = new Float64Array(D), sq = new Float64Array(D);
  let n = 0;
  for (const meta of train) {
    const f = await dataset.load(meta.id);
    for (let t = 0; t < f.length; t++) {
      for (let d = 0; d < D; d++) {
        const v = f.data[t * D + d];
        sum[d] += v;
        sq[d] += v * v;
      }
    }
    n += f.length;
  }
  for (let d = 0; d < D; d++) {
    model.mean[d] = sum[d] / Math.max(1, n);
    const variance = sq[d] / Math.max(1, n) - model.mean[d] ** 2;
    model.invStd[d] = 1 / Math.sqrt(Math.max(variance, 1e-8));
  }

  // Training: Adam on the MIL loss, one video per step.
  const rand = rng(ctx.seed);
  const mW = new Float64Array(C * D), vW = new Float64Array(C * D);
  const mB = new Float64Array(C), vB = new Float64Array(C);
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  let step = 0;
  const loss: { step: number; value: number }[] = [];
  const bar = ctx.progress("cas-threshold", o.epochs * train.length);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = train.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let epochLoss = 0;
    for (const vi of order) {
      const meta = train[vi];
      const f = await dataset.load(meta.id);
      if (f.length === 0) continue;
      const z = model.standardise(f.data, f.length);
      const cas = model.cas(z, f.length);
      const k = Math.max(1, Math.ceil(f.length / o.topkDivisor));
      const gW = new Float64Array(C * D), gB = new Float64Array(C);
      const labels = new Set(meta.labels);
      for (let c = 0; c < C; c++) {
        const rows = topkRows(cas, f.length, C, c, k);
        let s = 0;
        for (const t of rows) s += cas[t * C + c];
        const p = sigmoid(s / k);
        const y = labels.has(c) ? 1 : 0;
        epochLoss -= (y ? Math.log(p + 1e-12) : Math.log(1 - p + 1e-12)) / C;
        // d(BCE)/d(logit) = p - y; the logit is the mean over the top-k rows.
        const g = (p - y) / C / k;
        gB[c] = g * k;
        for (const t of rows) {
          for (let d = 0; d < D; d++) gW[c * D + d] += g * z[t * D + d];
        }
      }
      step++;
      const c1 = 1 - b1 ** step, c2 = 1 - b2 ** step;
      for (let i = 0; i < C * D; i++) {
        mW[i] = b1 * mW[i] + (1 - b1) * gW[i];
        vW[i] = b2 * vW[i] + (1 - b2) * gW[i] * gW[i];
        model.w[i] -= o.lr * (mW[i] / c1) / (Math.sqrt(vW[i] / c2) + eps);
      }
      for (let c = 0; c < C; c++) {
        mB[c] = b1 * mB[c] + (1 - b1) * gB[c];
        vB[c] = b2 * vB[c] + (1 - b2) * gB[c] * gB[c];
        model.b[c] -= o.lr * (mB[c] / c1) / (Math.sqrt(vB[c] / c2) + eps);
      }
      bar.update(step);
    }
    loss.push({ step: epoch + 1, value: epochLoss / train.length });
  }
  bar.done();
  if (loss.length) {
    ctx.log(`cas-threshold: final MIL loss ${loss[loss.length - 1].value.toFixed(4)}`);
  }

  // Proposals on both splits.
  const propose = async (metas: VideoMeta[], useLabels: boolean): Promise<Detection[]> => {
    const out: Detection[] = [];
    for (const meta of metas) {
      const f = await dataset.load(meta.id);
      if (f.length === 0) continue;
      const cas = model.cas(model.standardise(f.data, f.length), f.length);
      const k = Math.max(1, Math.ceil(f.length / o.topkDivisor));
      let classes: number[];
      if (useLabels) {
        classes = meta.labels;
      } else {
        const probs = Array.from({ length: C }, (_, c) => {
          const rows = topkRows(cas, f.length, C, c, k);
          return sigmoid(rows.reduce((s, t) => s + cas[t * C + c], 0) / k);
        });
        const best = probs.indexOf(Math.max(...probs));
        classes = probs.map((p, c) => (p >= o.classThreshold || c === best ? c : -1))
          .filter((c) => c >= 0);
      }
      const dets: Detection[] = [];
      for (const c of classes) {
        const p = new Float64Array(f.length);
        for (let t = 0; t < f.length; t++) p[t] = sigmoid(cas[t * C + c]);
        smoothInPlace(p, o.smooth);
        dets.push(...runsToProposals(p, meta, dataset.classes[c], o.thresholds));
      }
      out.push(...(useLabels ? dets : nms(dets, o.nmsIoU)));
    }
    return out;
  };
  return {
    train: await propose(train, true),
    test: await propose(test, false),
    curves: { loss },
    info: { steps: step, epochs: o.epochs },
  };
}

const casThresholdGenerator: GeneratorPlugin = {
  kind: "generator",
  name: "cas-threshold",
  description: "logistic CAS trained with video labels (MIL top-k), thresholded into proposals",
  generate,
};

export default casThresholdGenerator;
