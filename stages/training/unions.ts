/**
 * Union labels among the pseudo labels: a label that contains two or more disjoint, shorter
 * labels of its own class in the same video.
 *
 * The generator's proposals come from a sweep of thresholds over one activation sequence
 * (`G:core/utils.py`, the CAS and actionness sweeps): a low threshold joins neighbouring
 * actions and the gap between them into one long segment, while higher thresholds find the
 * actions themselves. Both survive the per-class NMS (their IoU is small) and the prior filter
 * (a long segment overlaps many others). A label that contains two disjoint labels of its
 * class is such a union. A student trained on unions learns to bridge the gaps between actions:
 * its best-ranked detections then hold merged segments (`bench/BENCH-training.md`, "Union
 * labels"). `StudentConfig.dropUnionLabels` trains without them.
 *
 * @module
 */
import type { Detection } from "../../lib/types.ts";

/**
 * Indices (into `labels`) of the union labels: those containing at least two disjoint labels of
 * the same video and class that are strictly shorter than them. Containment is in seconds, with
 * a tolerance of 1 ms for labels that share an edge.
 */
export function unionLabelIndices(labels: readonly Detection[]): Set<number> {
  const groups = new Map<string, number[]>();
  labels.forEach((d, i) => {
    const key = `${d.videoId}\u0000${d.label}`;
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  });
  const eps = 1e-3;
  const out = new Set<number>();
  for (const idx of groups.values()) {
    // Sorted by end: the greedy pass then finds the largest set of disjoint inner labels.
    const byEnd = [...idx].sort((x, y) => labels[x].segment[1] - labels[y].segment[1]);
    for (const i of idx) {
      const [a, b] = labels[i].segment;
      let count = 0;
      let free = -Infinity;
      for (const j of byEnd) {
        const [s, e] = labels[j].segment;
        if (j === i || e - s >= b - a || s < a - eps || e > b + eps || s < free) continue;
        free = e;
        if (++count >= 2) {
          out.add(i);
          break;
        }
      }
    }
  }
  return out;
}
