/**
 * Evaluator speed on the real AutoLoc THUMOS'14 file (20,763 detections, 3,234 GT).
 * Run: `npx -y deno@2.9.6 bench -A bench/evaluation.bench.ts`. The baseline is parsing the
 * two JSON files alone, so the ratio shows what scoring adds on top of reading.
 */
import * as path from "node:path";
import {
  evaluateDetections,
  parseGroundTruth,
  parseResults,
  parseTious,
} from "../stages/evaluation.ts";

const DATA = path.resolve(import.meta.dirname!, "../../shared/data/thumos14_autoloc");
const gtText = await Deno.readTextFile(`${DATA}/autoloc_th14_test_gt.json`);
const predText = await Deno.readTextFile(`${DATA}/autoloc_th14_test_results.json`);
const tious = parseTious("0.1:0.9:0.1");
const gt = parseGroundTruth(JSON.parse(gtText), "gt", "test");
const preds = parseResults(JSON.parse(predText), "pred");

Deno.bench("parse both JSON files (baseline)", { group: "eval", baseline: true }, () => {
  JSON.parse(gtText);
  JSON.parse(predText);
});

Deno.bench("parse + evaluate 9 tIoUs", { group: "eval" }, () => {
  const g = parseGroundTruth(JSON.parse(gtText), "gt", "test");
  const p = parseResults(JSON.parse(predText), "pred");
  evaluateDetections(g, p, { tiou: tious });
});

Deno.bench("evaluate only (records in memory)", { group: "eval" }, () => {
  evaluateDetections(gt, preds, { tiou: tious });
});
