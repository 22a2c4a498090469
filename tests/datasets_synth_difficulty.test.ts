// The synthetic features must make weak supervision realistic, not trivial: a linear
// (nearest class mean) classifier of single snippets is far from perfect but far above
// chance, and temporal context (averaging neighbours) helps.
import * as fs from "node:fs/promises";
import { tempDir } from "./datasets_helpers.ts";
import { gridToSeconds, openDataset } from "../datasets.ts";
import { synthesize } from "../datasets/synth.ts";

Deno.test("datasets synth: single snippets are hard, context helps", async () => {
  const dir = await tempDir();
  try {
    await synthesize({ out: dir, videos: 60, dim: 32, seed: 1 });
    const ds = await openDataset(dir, { layout: "cola" });
    const D = ds.featureDim;
    const rows = async (split: "train" | "test", smooth: number) => {
      const X: Float64Array[] = [];
      const Y: number[] = [];
      for await (const { meta, features: f } of ds.videos(split)) {
        for (let t = 0; t < f.length; t++) {
          const tc = gridToSeconds(meta.grid, t + 0.5);
          const c = new Set(
            meta.annotations.filter((a) => tc >= a.segment[0] && tc <= a.segment[1])
              .map((a) => (a.classId === 4 ? 7 : a.classId)), // CliffDiving is also Diving
          );
          if (c.size !== 1) continue; // foreground snippets of one class
          const x = new Float64Array(D);
          let n = 0;
          for (let u = Math.max(0, t - smooth); u <= Math.min(f.length - 1, t + smooth); u++) {
            for (let d = 0; d < D; d++) x[d] += f.data[u * D + d];
            n++;
          }
          X.push(x.map((v) => v / n));
          Y.push([...c][0]);
        }
      }
      return { X, Y };
    };
    const accuracy = async (smooth: number) => {
      const tr = await rows("train", smooth);
      const te = await rows("test", smooth);
      const mean = new Map<number, Float64Array>();
      const cnt = new Map<number, number>();
      tr.X.forEach((x, i) => {
        const m = mean.get(tr.Y[i]) ?? new Float64Array(D);
        x.forEach((v, d) => (m[d] += v));
        mean.set(tr.Y[i], m);
        cnt.set(tr.Y[i], (cnt.get(tr.Y[i]) ?? 0) + 1);
      });
      for (const [c, m] of mean) m.forEach((_, d) => (m[d] /= cnt.get(c)!));
      let ok = 0;
      let n = 0;
      te.X.forEach((x, i) => {
        if (!mean.has(te.Y[i])) return;
        let best = -1;
        let bd = Infinity;
        for (const [c, m] of mean) {
          let s = 0;
          for (let d = 0; d < D; d++) s += (x[d] - m[d]) ** 2;
          if (s < bd) (bd = s), (best = c);
        }
        n++;
        if (best === te.Y[i]) ok++;
      });
      return ok / n;
    };
    const single = await accuracy(0);
    const context = await accuracy(3);
    if (!(single > 0.15 && single < 0.85)) throw new Error(`single-snippet accuracy ${single}`);
    if (!(context > single)) throw new Error(`context ${context} <= single ${single}`);
  } finally {
    await fs.rm(dir, { recursive: true });
  }
});
