/**
 * `synth`: writes the synthetic dataset (both THUMOS'14 layouts from one latent per video,
 * or an ActivityNet-like set). See `datasets/synth.ts` for the feature model.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import { checkOutputs, lockRunFolder } from "../lib/io.ts";
import {
  isInteractive,
  logErr,
  numberFlag,
  parseFlags,
  Progress,
  requireFlag,
} from "../lib/cli_util.ts";
import { synthesize, type SynthFormat } from "../datasets/synth.ts";
import { loadPluginModule } from "../registry.ts";

/** Usage text of `synth`. */
export const usage = `usage: deno run -A mod.ts synth --out DIR [FLAGS]

Writes synthetic I3D-like features in the real layouts, on the real THUMOS'14 geometry
(412 videos; DIR/actionformer/ and DIR/cola/ from the same latent per video) or on random
ActivityNet-like geometry (DIR/activitynet/).

  --out DIR          output folder (required)
  --like NAME        thumos14 (default) | activitynet
  --dim D            feature dim, even (default 128; CoLA files hold D/2 each for rgb, flow)
  --videos N         deterministic split-balanced subset (default: all 412; ANet: 300)
  --seed S           seed (default 0)
  --format F         npy (default) | npy.gz | npz | zip (one features .zip per layout)
  --json             print a JSON summary as the last stdout line
  --plugin PATH_OR_URL  load a plugin module first (repeatable; see the plugins command)`;

const FORMATS = ["npy", "npy.gz", "npz", "zip"];

/** Runs `synth`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("synth", args, {
    out: { type: "string" },
    like: { type: "string" },
    dim: { type: "string" },
    videos: { type: "string" },
    seed: { type: "string" },
    format: { type: "string" },
    json: { type: "boolean" },
    plugin: { type: "string", multiple: true },
  });
  for (const m of (values.plugin as string[] | undefined) ?? []) await loadPluginModule(m);
  const out = requireFlag("synth", values, "out");
  const like = (values.like as string | undefined) ?? "thumos14";
  if (like !== "thumos14" && like !== "activitynet") {
    throw new InputError(`synth: --like must be thumos14 or activitynet, got "${like}"`);
  }
  const dim = numberFlag("synth", values, "dim") ?? 128;
  if (!Number.isInteger(dim) || dim < 2 || dim % 2 !== 0) {
    throw new InputError(`synth: --dim must be an even integer >= 2, got ${dim}`);
  }
  const videos = numberFlag("synth", values, "videos");
  if (videos !== undefined && (!Number.isInteger(videos) || videos < 1)) {
    throw new InputError(`synth: --videos must be a positive integer, got ${videos}`);
  }
  const seed = numberFlag("synth", values, "seed") ?? 0;
  if (!Number.isInteger(seed)) throw new InputError(`synth: --seed must be an integer`);
  const format = (values.format as string | undefined) ?? "npy";
  if (!FORMATS.includes(format)) {
    throw new InputError(`synth: --format must be one of ${FORMATS.join(", ")}, got "${format}"`);
  }
  const json = Boolean(values.json);
  await checkOutputs("--out", { dirs: [out] });
  await using _lock = await lockRunFolder(out, "synth", logErr);
  let bar: Progress | null = null;
  const r = await synthesize({
    out,
    like,
    dim,
    videos,
    seed,
    format: format as SynthFormat,
    onProgress: (d, t) => {
      bar ??= new Progress("synth", t, isInteractive(json));
      bar.update(d);
    },
  });
  (bar as Progress | null)?.done();
  const summary = {
    out: r.out,
    layouts: r.layouts,
    videos: r.videos,
    dim,
    format,
    seed,
    rows: r.rows,
    megabytes: Math.round(r.bytes / 1e4) / 100,
    seconds: Math.round(r.seconds * 100) / 100,
  };
  if (json) console.log(JSON.stringify(summary));
  else {
    logErr(
      `synth: wrote ${r.layouts.map((l) => `${out}/${l}/`).join(", ")}: ` +
        `${r.videos.train} train + ${r.videos.test} test videos, D=${dim}, ${format}, ` +
        `${summary.megabytes} MB in ${summary.seconds} s`,
    );
  }
  return 0;
}
