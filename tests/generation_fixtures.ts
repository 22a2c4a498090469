/**
 * Tiny in-memory datasets for the generation tests: snippets of an action instance carry
 * their class's prototype vector plus noise, background snippets a background prototype plus
 * noise, in the CoLA grid (0.64 s per snippet).
 *
 * @module
 */
import { Rng } from "../lib/rng.ts";
import { COLA_GRID } from "../datasets/time.ts";
import type { Annotation, Dataset, Split, VideoFeatures, VideoMeta } from "../datasets/types.ts";

/** Options of {@linkcode toyDataset}. */
export interface ToyOptions {
  classes?: number;
  dim?: number;
  train?: number;
  test?: number;
  minLen?: number;
  maxLen?: number;
  noise?: number;
  seed?: number;
}

/** Builds a small separable dataset (class prototypes in feature space). */
export function toyDataset(o: ToyOptions = {}): Dataset {
  const C = o.classes ?? 4, D = o.dim ?? 16, noise = o.noise ?? 0.6;
  const rng = new Rng(o.seed ?? 1);
  const proto = Array.from({ length: C + 1 }, () => Array.from({ length: D }, () => rng.normal()));
  const classes = Array.from({ length: C }, (_, c) => `class${c}`);
  const metas: VideoMeta[] = [];
  const feats = new Map<string, VideoFeatures>();
  const make = (split: Split, i: number) => {
    const L = rng.int(o.minLen ?? 48, o.maxLen ?? 96);
    const id = `${split}_${String(i).padStart(3, "0")}`;
    const cls = rng.int(0, C - 1);
    const nInst = rng.int(1, 3);
    const label = new Int32Array(L).fill(-1);
    const annotations: Annotation[] = [];
    for (let k = 0; k < nInst; k++) {
      const len = rng.int(4, Math.max(5, Math.floor(L / 6)));
      const s = rng.int(0, L - len);
      let free = true;
      for (let t = Math.max(0, s - 2); t < Math.min(L, s + len + 2); t++) free &&= label[t] < 0;
      if (!free) continue;
      for (let t = s; t < s + len; t++) label[t] = cls;
      annotations.push({
        label: classes[cls],
        classId: cls,
        segment: [0.64 * s, 0.64 * (s + len)],
      });
    }
    if (annotations.length === 0) {
      const s = Math.floor(L / 3), len = 6;
      for (let t = s; t < s + len; t++) label[t] = cls;
      annotations.push({
        label: classes[cls],
        classId: cls,
        segment: [0.64 * s, 0.64 * (s + len)],
      });
    }
    const data = new Float32Array(L * D);
    for (let t = 0; t < L; t++) {
      const p = proto[label[t] >= 0 ? label[t] : C];
      for (let d = 0; d < D; d++) data[t * D + d] = Math.max(0, p[d] + noise * rng.normal());
    }
    feats.set(id, { data, length: L, dim: D });
    metas.push({
      id,
      split,
      subset: split,
      duration: 0.64 * L,
      fps: 25,
      grid: { ...COLA_GRID },
      length: L,
      annotations,
      labels: [cls],
    });
  };
  for (let i = 0; i < (o.train ?? 24); i++) make("train", i);
  for (let i = 0; i < (o.test ?? 16); i++) make("test", i);
  return {
    layout: "toy",
    root: "memory:toy",
    classes,
    featureDim: D,
    list: (split?: Split) => metas.filter((m) => !split || m.split === split),
    load: (id: string) => {
      const f = feats.get(id);
      return f ? Promise.resolve(f) : Promise.reject(new Error(`no video ${id}`));
    },
    async *videos(split?: Split) {
      for (const meta of metas.filter((m) => !split || m.split === split)) {
        yield { meta, features: feats.get(meta.id)! };
      }
    },
  };
}
