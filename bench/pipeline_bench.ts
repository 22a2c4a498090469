/**
 * Seconds per stage of the default pipeline, per backend.
 *
 * `deno run -A bench/pipeline_bench.ts [--backends wasm,cpu,webgpu] [--full wasm]`
 *
 * Backends named in `--full` run the whole default preset (`deno run -A mod.ts --json` in a
 * subprocess, fresh run folder). The others run a shortened schedule (20 generator iterations,
 * 1 student epoch) whose per-step cost is scaled to the default schedule and reported as
 * "projected": a full cpu or llvmpipe-webgpu run takes tens of minutes on this machine.
 * Results are printed as a Markdown table (paste into BENCH.md).
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { generatorConfig } from "../stages/generation/presets.ts";
import { DEFAULT as STUDENT_DEFAULT } from "../stages/training/presets.ts";

const ROOT = path.resolve(import.meta.dirname!, "..");
const { values } = parseArgs({
  args: Deno.args,
  options: {
    backends: { type: "string", default: "wasm,cpu,webgpu" },
    full: { type: "string", default: "wasm" },
    seed: { type: "string", default: "0" },
  },
});
const backends = values.backends!.split(",");
const full = new Set(values.full!.split(","));
const GEN_ITERS = generatorConfig("default").iterations;
const STU_EPOCHS = STUDENT_DEFAULT.epochs;
const SHORT = { genIters: 20, stuEpochs: 1 };

interface Row {
  backend: string;
  mode: string;
  seconds: Record<string, number>;
  generator: number;
  student: number;
}

async function runOnce(backend: string, short: boolean): Promise<Row> {
  const out = await Deno.makeTempDir({ prefix: `fustal-bench-${backend}-` });
  const extra = short
    ? [
      "--generator-option",
      `iterations=${SHORT.genIters}`,
      "--generator-option",
      `evalEvery=${SHORT.genIters}`,
      "--student-option",
      `epochs=${SHORT.stuEpochs}`,
      "--student-option",
      `switchEpoch=${SHORT.stuEpochs}`,
    ]
    : [];
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      path.join(ROOT, "mod.ts"),
      "--out",
      out,
      "--backend",
      backend,
      "--seed",
      values.seed!,
      ...extra,
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) {
    throw new Error(
      `${backend}: ${new TextDecoder().decode(r.stderr).split("\n").slice(-5).join("\n")}`,
    );
  }
  const j = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  const seconds = j.seconds as Record<string, number>;
  if (short) {
    // Scale the training steps to the default schedule; the student's detection passes (at
    // the switch and at the end, ~inferSeconds each) do not grow with the epochs.
    const m = JSON.parse(await Deno.readTextFile(path.join(out, "metrics.json")));
    const st = m.student.info ?? {};
    seconds.generationShort = seconds.generation;
    seconds.trainingShort = seconds.training;
    seconds.generation *= GEN_ITERS / SHORT.genIters;
    if (st.trainSeconds && st.steps && st.inferSeconds !== undefined) {
      const stepsDefault = STU_EPOCHS * st.steps / SHORT.stuEpochs;
      seconds.training = (st.trainSeconds / st.steps) * stepsDefault + 2 * st.inferSeconds;
    } else {
      seconds.training *= STU_EPOCHS / SHORT.stuEpochs;
    }
  }
  await Deno.remove(out, { recursive: true }).catch(() => {});
  return {
    backend,
    mode: short ? "projected" : "measured",
    seconds,
    generator: j.generator.average,
    student: j.student.final.average,
  };
}

const rows: Row[] = [];
const failed: string[] = [];
for (const b of backends) {
  console.error(`bench: ${b} (${full.has(b) ? "full default preset" : "short, projected"})`);
  try {
    rows.push(await runOnce(b, !full.has(b)));
  } catch (e) {
    // One backend failing must not lose the others' figures.
    failed.push(`${b}: ${(e as Error).message.split("\n")[0]}`);
  }
}
const stages = ["data", "generation", "selection", "training", "evaluation"];
console.log(
  `| backend | mode | ${stages.join(" s | ")} s | total s | generator avg mAP | student avg mAP |`,
);
console.log(`|---|---|${stages.map(() => "---:").join("|")}|---:|---:|---:|`);
for (const r of rows) {
  const total = stages.reduce((a, s) => a + (r.seconds[s] ?? 0), 0);
  const maps = r.mode === "measured"
    ? `${(100 * r.generator).toFixed(1)} | ${(100 * r.student).toFixed(1)}`
    : "- | -";
  if (r.mode === "projected") {
    console.error(
      `${r.backend}: measured short run: generation ${r.seconds.generationShort.toFixed(1)} s ` +
        `(${SHORT.genIters} iterations + 1 evaluation), training ${
          r.seconds.trainingShort.toFixed(1)
        } s (${SHORT.stuEpochs} epoch + 2 detection passes)`,
    );
  }
  console.log(
    `| ${r.backend} | ${r.mode} | ${
      stages.map((s) => (r.seconds[s] ?? 0).toFixed(1)).join(" | ")
    } | ${total.toFixed(1)} | ${maps} |`,
  );
}
for (const f of failed) console.log(`\nfailed: ${f}`);
