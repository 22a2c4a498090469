/**
 * Training-stage benchmark: trains the student (default preset unless flags say otherwise) on
 * the synthetic THUMOS'14-shaped default set for several seeds and prints the measured table
 * of issue 6 (pseudo-label quality before/after selection, student test mAP before the EMA
 * switch, final student test mAP with EMA weights, raw weights, no-EMA ablation, seconds).
 *
 * Pseudo labels come from `--proposals P.json` (a generator's proposals on the training
 * videos, e.g. `mod.ts generate`; `--generator-test T.json` adds the generator's own test
 * mAP). Without it they are made from the training videos' ground truth with noise that
 * mimics a classification-based generator (jittered boundaries, fragments, merged neighbours,
 * missed instances, isolated false positives of the video's classes), then filtered by the
 * prior filter (paper Sec. 3.2): such labels are clearly marked `noisy-gt` in the output.
 *
 * ```
 * deno run -A bench/training_bench.ts [--root DIR] [--seeds 0,1,2] [--proposals P.json]
 *     [--generator-test T.json] [--epochs N] [--ablation] [--json]
 * ```
 *
 * @module
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend.ts";
import { readJson } from "../lib/io.ts";
import { Rng } from "../lib/rng.ts";
import type { Detection } from "../lib/types.ts";
import { openDataset } from "../datasets.ts";
import { synthesize } from "../datasets/synth.ts";
import type { Dataset } from "../datasets/types.ts";
import { evaluateDetections, parseResults, THUMOS_TIOUS } from "../stages/evaluation.ts";
import { priorFilter } from "../stages/selection.ts";
import { configFromOptions } from "../stages/training/plugin.ts";
import { groundTruthOf, trainStudent } from "../stages/training/train.ts";

/** Noisy proposals from ground truth, imitating a CAS-threshold generator's failure modes. */
export function noisyProposals(ds: Dataset, seed: number): Detection[] {
  const rng = new Rng(seed);
  const out: Detection[] = [];
  for (const m of ds.list("train")) {
    const anns = m.annotations;
    const classesOf = [...new Set(anns.map((a) => a.label))];
    for (const a of anns) {
      if (rng.next() < 0.15) continue; // missed instance
      const [s, e] = a.segment;
      const len = Math.max(e - s, 0.2);
      // A cluster of overlapping proposals around the action (several CAS thresholds).
      const n = rng.int(2, 6);
      for (let i = 0; i < n; i++) {
        const js = s + len * 0.25 * rng.normal();
        const je = e + len * 0.25 * rng.normal();
        const frag = rng.next() < 0.2; // fragment: only part of the action
        const seg: [number, number] = frag
          ? [js + len * 0.4 * rng.next(), je - len * 0.4 * rng.next()]
          : rng.next() < 0.1
          ? [js - len * (0.5 + rng.next()), je] // merged with background / neighbour
          : [js, je];
        if (seg[1] - seg[0] < 0.1) continue;
        out.push({
          videoId: m.id,
          label: a.label,
          score: Math.min(1.2, 0.25 + 0.75 * rng.next()),
          segment: [Math.max(0, seg[0]), Math.min(m.duration, seg[1])],
        });
      }
    }
    // Isolated false positives (context / distractors), mostly single.
    const nfp = Math.round(anns.length * (0.5 + rng.next()));
    for (let i = 0; i < nfp; i++) {
      const len = 0.5 + 5 * rng.next();
      const st = rng.next() * Math.max(0.1, m.duration - len);
      const label = classesOf.length ? classesOf[rng.int(0, classesOf.length - 1)] : ds.classes[0];
      const k = rng.next() < 0.3 ? 2 : 1;
      for (let j = 0; j < k; j++) {
        const d = j * len * 0.3;
        out.push({
          videoId: m.id,
          label,
          score: 0.2 + 0.8 * rng.next(),
          segment: [st + d, st + d + len],
        });
      }
    }
  }
  return out;
}

function byVideo(dets: Detection[]): Map<string, Detection[]> {
  const m = new Map<string, Detection[]>();
  for (const d of dets) {
    const l = m.get(d.videoId);
    if (l) l.push(d);
    else m.set(d.videoId, [d]);
  }
  return m;
}

/**
 * The student's dataset root of the training benches: `root` when given, else the ActionFormer
 * package of the synthetic default set (128-d, seed 0), written once into
 * `.cache/bench-training-synth`.
 */
export async function benchStudentRoot(root?: string): Promise<string> {
  if (root) return root;
  const cache = path.resolve(".cache/bench-training-synth");
  try {
    await Deno.stat(path.join(cache, "actionformer/annotations/thumos14.json"));
  } catch {
    await synthesize({ out: cache, dim: 128, seed: 0 });
  }
  return path.join(cache, "actionformer");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      root: { type: "string" },
      seeds: { type: "string", default: "0,1,2" },
      proposals: { type: "string" },
      "generator-test": { type: "string" },
      epochs: { type: "string" },
      ablation: { type: "boolean", default: false },
      backend: { type: "string", default: "wasm" },
      json: { type: "boolean", default: false },
    },
  });
  const backend = await initBackend(values.backend as "wasm");
  const ds = await openDataset(await benchStudentRoot(values.root));
  const gtTest = groundTruthOf(ds, "test");
  const gtTrain = groundTruthOf(ds, "train");
  const avg = (gt: typeof gtTest, d: Detection[]) =>
    evaluateDetections(gt, d, { tiou: THUMOS_TIOUS });
  const seeds = values.seeds!.split(",").map(Number);
  const rows: Record<string, unknown>[] = [];
  const genTest = values["generator-test"]
    ? avg(gtTest, parseResults(await readJson(values["generator-test"]), values["generator-test"]))
    : undefined;
  for (const seed of seeds) {
    const raw = values.proposals
      ? parseResults(await readJson(values.proposals), values.proposals)
      : noisyProposals(ds, 1000 + seed);
    const pseudo = [...byVideo(raw).values()].flatMap((l) => priorFilter(l));
    const qBefore = avg(gtTrain, raw);
    const qAfter = avg(gtTrain, pseudo);
    const cfg = configFromOptions({
      preset: "default",
      ...(values.epochs ? { epochs: Number(values.epochs) } : {}),
    });
    const t0 = performance.now();
    const r = await trainStudent(ds, pseudo, {
      config: cfg,
      seed,
      evalRaw: true,
      log: (l) => console.error(`[seed ${seed}] ${l}`),
    });
    const wall = (performance.now() - t0) / 1000;
    const before = avg(gtTest, r.testBeforeSwitch ?? []);
    const beforeRaw = avg(gtTest, r.testBeforeSwitchRaw ?? []);
    const fin = avg(gtTest, r.test);
    const finRaw = avg(gtTest, r.testRaw ?? []);
    let noEma: ReturnType<typeof avg> | undefined;
    if (values.ablation) {
      const r2 = await trainStudent(ds, pseudo, {
        config: { ...cfg, ema: false },
        seed,
        log: (l) => console.error(`[seed ${seed} no-ema] ${l}`),
      });
      noEma = avg(gtTest, r2.test);
    }
    const row = {
      seed,
      labels: values.proposals ? "generator" : "noisy-gt",
      generatorTest: genTest?.average,
      proposals: raw.length,
      pseudoLabels: pseudo.length,
      pseudoBefore: qBefore.average,
      pseudoAfter: qAfter.average,
      beforeSwitchEma: before.average,
      beforeSwitchRaw: beforeRaw.average,
      finalEma: fin.average,
      finalEmaPerTiou: fin.mAP,
      finalRaw: finRaw.average,
      noEmaFinal: noEma?.average,
      trainSeconds: r.info?.trainSeconds,
      inferSeconds: r.info?.inferSeconds,
      wallSeconds: wall,
      backend: backend.backend,
    };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
  const pct = (v: unknown) => (typeof v === "number" ? (100 * v).toFixed(1) : "n/a");
  console.log(
    "| seed | labels | gen test | pseudo before | pseudo after | student pre-switch (EMA / raw) | " +
      "final EMA | final raw | no-EMA ablation | train s | infer s |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.seed} | ${r.labels} | ${pct(r.generatorTest)} | ${pct(r.pseudoBefore)} | ${
        pct(r.pseudoAfter)
      } | ` +
        `${pct(r.beforeSwitchEma)} / ${pct(r.beforeSwitchRaw)} | ${pct(r.finalEma)} | ${
          pct(r.finalRaw)
        } | ` +
        `${pct(r.noEmaFinal)} | ${(r.trainSeconds as number).toFixed(0)} | ${
          (r.inferSeconds as number).toFixed(0)
        } |`,
    );
  }
  if (values.json) console.log(JSON.stringify(rows));
}
