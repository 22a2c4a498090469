/**
 * Example filter plugin: keep the `k` best proposals of each VIDEO (all classes together),
 * optionally only those scoring above `minScore`. (The built-in `topk` keeps k per class.)
 *
 * Use it:
 *   deno run -A mod.ts select --plugin plugins/topk_filter.ts --filter topk-video \
 *     --option k=8 --proposals proposals.json --out pseudo.json
 *
 * A plugin module needs nothing from FuSTAL-TS: the type import below is optional (and is
 * erased at run time). From outside the project, import the types by URL from `mod.ts`.
 *
 * @module
 */
import type { Detection, FilterContext, FilterPlugin } from "../plugins.ts";

function numberOption(ctx: FilterContext, name: string, dflt: number): number {
  const v = ctx.options[name];
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    // A thrown error is reported by the host as a user error naming this plugin.
    throw new Error(`option ${name} must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

const topkVideo: FilterPlugin = {
  kind: "filter",
  name: "topk-video",
  description: "keep the k best proposals of each video (option k, default 10; minScore)",
  apply(proposals: Detection[], ctx: FilterContext): Detection[] {
    const k = numberOption(ctx, "k", 10);
    const minScore = numberOption(ctx, "minScore", -Infinity);
    // Sort a copy of the indices, best first; equal scores keep their input order.
    const order = proposals.map((_, i) => i)
      .filter((i) => proposals[i].score > minScore)
      .sort((a, b) => proposals[b].score - proposals[a].score || a - b);
    const keep = new Set(order.slice(0, Math.max(0, Math.floor(k))));
    return proposals.filter((_, i) => keep.has(i));
  },
};

export default topkVideo;
