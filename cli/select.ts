/**
 * `select`: filter a proposal file (ActivityNet result JSON) into pseudo labels with a
 * built-in or plugin filter, and optionally report pseudo-label quality before and after.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import { atomicWriteJson, checkOutputs, readJson } from "../lib/io.ts";
import { keyValueOptions, logErr, numberFlag, parseFlags, requireFlag } from "../lib/cli_util.ts";
import type { Detection } from "../lib/types.ts";
import { parseGroundTruth, parseResults, parseTious, toResultsFile } from "../stages/evaluation.ts";
import {
  groupByVideo,
  type PseudoLabelQuality,
  pseudoLabelQuality,
  selectByVideo,
} from "../stages/selection.ts";
import { DEFAULT_PLUGINS, getPlugin, loadPluginModule, setPluginCallTimeout } from "../registry.ts";

/** Usage text of `select`. */
export const usage =
  `select --proposals P.json --out OUT.json [--filter NAME] [--gamma G] [--eta E] [--k K]
       [--option KEY=VALUE ...] [--gt GT.json [--subset S] [--tiou LIST]]
       [--plugin PATH_OR_URL ...] [--plugin-timeout S] [--json]
  Keeps the proposals the filter accepts, video by video; input and output are ActivityNet
  result JSON ({"results": {video: [{label, score, segment}]}}; other top-level keys such as
  "method" and "version" are kept). Videos left with no proposal keep an empty list.
  Filters: prior (default; keep iff IoU score >= gamma and score > eta, gamma 0.2, eta 0.4),
  score (score > eta), topk (k best per class per video, k 5), none, or a plugin's name.
  --plugin loads a module whose default export is a plugin or an array of them (repeatable).
  --plugin-timeout S fails a plugin call that has not settled after S seconds (default none).
  --option passes any option to the filter (VALUE parsed as JSON when it is valid JSON).
  --gt scores the proposals before and after (mAP per tIoU, average; precision and recall at
  tIoU 0.5 by greedy one-to-one matching). --json: last line {"before", "after", "videos",
  "quality"}.`;

function parseOptions(values: Record<string, unknown>): Record<string, unknown> {
  const opts = keyValueOptions("select", "option", values.option as string[] | undefined);
  for (const name of ["gamma", "eta", "k"]) {
    const n = numberFlag("select", values, name);
    if (n !== undefined) opts[name] = n;
  }
  if (opts.k !== undefined && (!Number.isInteger(opts.k) || (opts.k as number) < 0)) {
    throw new InputError(`select: --k must be a non-negative integer, got ${opts.k}`);
  }
  return opts;
}

function pct(v: number): string {
  return (100 * v).toFixed(1);
}

function qualityTable(before: PseudoLabelQuality, after: PseudoLabelQuality): string {
  const head = ["", ...before.tiou.map((t) => `@${t.toFixed(2)}`), "avg", "P@0.5", "R@0.5", "n"];
  const row = (name: string, q: PseudoLabelQuality) => [
    name,
    ...q.mAP.map(pct),
    pct(q.average),
    pct(q.precision),
    pct(q.recall),
    String(q.proposals),
  ];
  const rows = [head, row("before", before), row("after", after)];
  const w = head.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return "pseudo-label quality (%, mAP per tIoU)\n" +
    rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  "))
      .join("\n");
}

/** Runs `select`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("select", args, {
    proposals: { type: "string" },
    out: { type: "string" },
    filter: { type: "string", default: DEFAULT_PLUGINS.filter },
    gamma: { type: "string" },
    eta: { type: "string" },
    k: { type: "string" },
    option: { type: "string", multiple: true },
    gt: { type: "string" },
    subset: { type: "string" },
    tiou: { type: "string" },
    plugin: { type: "string", multiple: true },
    "plugin-timeout": { type: "string" },
    json: { type: "boolean", default: false },
  });
  for (const m of (values.plugin as string[] | undefined) ?? []) await loadPluginModule(m);
  const propFile = requireFlag("select", values, "proposals");
  const outFile = requireFlag("select", values, "out");
  await checkOutputs("--out", { files: [outFile] });
  const options = parseOptions(values);
  const tiou = typeof values.tiou === "string" ? parseTious(values.tiou) : undefined;
  if (values.gt === undefined && (values.subset !== undefined || values.tiou !== undefined)) {
    throw new InputError("select: --subset and --tiou need --gt");
  }
  setPluginCallTimeout(numberFlag("select", values, "plugin-timeout"));
  const filterName = values.filter as string;
  const filter = await getPlugin("filter", filterName);

  const raw = await readJson(propFile);
  const proposals = parseResults(raw, propFile);
  // Every video key of the input, including videos with an empty list: the output keeps them.
  const byVideo = new Map<string, Detection[]>(
    Object.keys((raw as { results: Record<string, unknown> }).results).map((v) => [v, []]),
  );
  for (const [v, list] of groupByVideo(proposals)) byVideo.set(v, list);
  const gt = typeof values.gt === "string"
    ? parseGroundTruth(await readJson(values.gt), values.gt, values.subset as string | undefined)
    : undefined;

  const t0 = performance.now();
  const kept = await selectByVideo(byVideo, filter, { options });
  const ms = performance.now() - t0;
  const after = [...kept.values()].flat();

  const { results } = toResultsFile(after, filterName, { videoIds: [...kept.keys()] });
  const top = { ...(raw as Record<string, unknown>) };
  delete top.results;
  await atomicWriteJson(outFile, { ...top, results });

  const emptyAfter = [...kept.values()].filter((l) => l.length === 0).length;
  const summary: Record<string, unknown> = {
    before: proposals.length,
    after: after.length,
    videos: kept.size,
    emptyVideos: emptyAfter,
    filter: filter.name,
    options,
    ms: Number(ms.toFixed(1)),
  };
  let table = "";
  if (gt) {
    const warned = new Set<string>();
    const onWarning = (m: string) => {
      if (!warned.has(m)) logErr(m);
      warned.add(m);
    };
    const qb = pseudoLabelQuality(gt, proposals, { tiou, onWarning });
    const qa = pseudoLabelQuality(gt, after, { tiou, onWarning });
    const pick = (q: PseudoLabelQuality) => ({
      tiou: q.tiou,
      mAP: q.mAP,
      average: q.average,
      precision: q.precision,
      recall: q.recall,
    });
    summary.quality = { before: pick(qb), after: pick(qa) };
    table = qualityTable(qb, qa);
  }
  if (values.json) {
    console.log(JSON.stringify(summary));
  } else {
    const opt = Object.keys(options).length ? ` ${JSON.stringify(options)}` : "";
    console.log(
      `filter ${filter.name}${opt}: ${proposals.length} -> ${after.length} proposals on ` +
        `${kept.size} videos (${emptyAfter} left empty), ${ms.toFixed(0)} ms; wrote ${outFile}`,
    );
    if (table) console.log(table);
  }
  return 0;
}
