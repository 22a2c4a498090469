/**
 * `eval`: score a result file against ground truth with the ActivityNet detection mAP.
 *
 * @module
 */
import { datasetTious, evaluateFiles, formatEvalTable, parseTious } from "../stages/evaluation.ts";
import { logErr, parseFlags, requireFlag } from "../lib/cli_util.ts";
import { loadPluginModule } from "../registry.ts";

/** Usage text of `eval`. */
export const usage = `eval --gt GT.json --pred PRED.json [--subset NAME] [--tiou LIST|lo:hi:step]
     [--dataset thumos14|activitynet] [--json]
  Detection mAP exactly as the official ActivityNet evaluator. --tiou takes 0.3,0.5,0.7 or
  0.1:0.7:0.1; --dataset thumos14 = 0.1:0.7:0.1, activitynet = 0.5:0.95:0.05 (default: by the
  GT, activitynet's for 100 classes or more, else thumos14's).
  Without --subset every video of the GT is scored.
  --plugin PATH_OR_URL  load a plugin module first (repeatable; see the plugins command)`;

/** Runs `eval`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags("eval", args, {
    gt: { type: "string" },
    pred: { type: "string" },
    subset: { type: "string" },
    tiou: { type: "string" },
    dataset: { type: "string" },
    json: { type: "boolean", default: false },
    plugin: { type: "string", multiple: true },
  });
  for (const m of (values.plugin as string[] | undefined) ?? []) await loadPluginModule(m);
  const gt = requireFlag("eval", values, "gt");
  const pred = requireFlag("eval", values, "pred");
  const tiou = typeof values.tiou === "string"
    ? parseTious(values.tiou)
    : typeof values.dataset === "string"
    ? datasetTious(values.dataset)
    : undefined;
  const r = await evaluateFiles(gt, pred, {
    subset: values.subset as string | undefined,
    tiou,
    onWarning: logErr,
  });
  if (values.json) {
    console.log(JSON.stringify({
      tiou: r.tiou,
      mAP: r.mAP,
      average: r.average,
      perClass: r.perClass,
    }));
  } else {
    console.log(
      `${r.counts.videos} videos, ${r.counts.instances} ground-truth instances, ` +
        `${r.counts.detections} detections, ${Object.keys(r.perClass).length} classes`,
    );
    console.log(formatEvalTable(r));
  }
  return 0;
}
