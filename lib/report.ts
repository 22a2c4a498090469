/**
 * `report.html`: one self-contained page (inline SVG and CSS, no script, no network) that
 * shows a run at a glance: mAP per tIoU for every stage, training curves, and timelines of a
 * few videos (ground truth, raw proposals, selected pseudo labels, final detections).
 *
 * @module
 */
import type { Segment } from "./types.ts";
import type { CurvePoint } from "./plugin_types.ts";

export type { CurvePoint } from "./plugin_types.ts";
export type { Segment } from "./types.ts";

/** One mAP-per-tIoU series of the chart. */
export interface MapSeries {
  /** Legend name. */
  name: string;
  /** mAP per threshold (0..1). */
  mAP: number[];
  /** Average over thresholds. */
  average: number;
}

/** One row (track) of a video timeline. */
export interface TimelineTrack {
  /** Track name (e.g. "ground truth"). */
  name: string;
  /** Segments with labels and optional scores. */
  items: { label: string; segment: Segment; score?: number }[];
}

/** A video's timeline. */
export interface VideoTimeline {
  /** Video id. */
  videoId: string;
  /** Duration in seconds (x axis). */
  duration: number;
  /** Tracks drawn top to bottom. */
  tracks: TimelineTrack[];
}

/** Everything the report draws. */
export interface ReportData {
  /** Page title. */
  title: string;
  /** Key-value facts shown at the top (backend, seconds per stage, seed...). */
  facts: Record<string, string | number>;
  /** tIoU thresholds of the chart. */
  tiou: number[];
  /** Series of the mAP chart. */
  series: MapSeries[];
  /** Training curves, grouped by stage name then curve name. */
  curves: Record<string, Record<string, CurvePoint[]>>;
  /** Video timelines. */
  timelines: VideoTimeline[];
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

function fmt(v: number, d = 3): string {
  return Number.isFinite(v) ? v.toFixed(d) : "-";
}

/** A line chart of mAP (%) per tIoU. */
export function mapChartSvg(tiou: number[], series: MapSeries[]): string {
  const W = 640, H = 300, L = 50, R = 190, T = 20, B = 40;
  const pw = W - L - R, ph = H - T - B;
  const top = Math.max(10, ...series.flatMap((s) => s.mAP.map((v) => v * 100)));
  const maxY = Math.min(100, Math.ceil((top * 1.05) / 10) * 10);
  const x = (i: number) => L + (tiou.length > 1 ? (i / (tiou.length - 1)) * pw : pw / 2);
  const y = (v: number) => T + ph - (v / maxY) * ph;
  const parts: string[] = [];
  for (let g = 0; g <= 5; g++) {
    const v = (maxY * g) / 5;
    parts.push(
      `<line x1="${L}" x2="${L + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v.toFixed(0)}</text>`,
    );
  }
  tiou.forEach((t, i) =>
    parts.push(
      `<text x="${x(i)}" y="${T + ph + 16}" text-anchor="middle" font-size="11">${
        t.toFixed(2)
      }</text>`,
    )
  );
  parts.push(
    `<text x="${L + pw / 2}" y="${H - 4}" text-anchor="middle" font-size="12">tIoU</text>`,
    `<text x="12" y="${T + ph / 2}" font-size="12" transform="rotate(-90 12 ${
      T + ph / 2
    })" text-anchor="middle">mAP (%)</text>`,
  );
  series.forEach((s, k) => {
    const c = PALETTE[k % PALETTE.length];
    const pts = s.mAP.map((v, i) => `${x(i).toFixed(1)},${y(v * 100).toFixed(1)}`).join(" ");
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts}"/>`);
    s.mAP.forEach((v, i) =>
      parts.push(`<circle cx="${x(i)}" cy="${y(v * 100)}" r="3" fill="${c}"/>`)
    );
    parts.push(
      `<rect x="${L + pw + 12}" y="${T + k * 18}" width="12" height="4" fill="${c}"/>`,
      `<text x="${L + pw + 28}" y="${T + k * 18 + 6}" font-size="11">${esc(s.name)} (${
        (s.average * 100).toFixed(1)
      })</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="mAP per tIoU">${
    parts.join("")
  }</svg>`;
}

/** A small line chart of one or more curves sharing an x axis. */
export function curveChartSvg(title: string, curves: Record<string, CurvePoint[]>): string {
  const entries = Object.entries(curves).filter(([, c]) => c.length > 0);
  const W = 300, H = 160, L = 50, R = 10, T = 24, B = 28;
  const pw = W - L - R, ph = H - T - B;
  const xs = entries.flatMap(([, c]) => c.map((p) => p.step));
  const ys = entries.flatMap(([, c]) => c.map((p) => p.value)).filter(Number.isFinite);
  const x0 = Math.min(0, ...xs), x1 = Math.max(1, ...xs);
  let y0 = ys.length ? Math.min(...ys) : 0, y1 = ys.length ? Math.max(...ys) : 1;
  if (y1 - y0 < 1e-9) (y0 -= 0.5), (y1 += 0.5);
  const x = (v: number) => L + ((v - x0) / (x1 - x0)) * pw;
  const y = (v: number) => T + ph - ((v - y0) / (y1 - y0)) * ph;
  const parts = [
    `<text x="${L}" y="14" font-size="12" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#999"/>`,
    `<line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#999"/>`,
    `<text x="${L - 4}" y="${T + 8}" font-size="10" text-anchor="end">${fmt(y1)}</text>`,
    `<text x="${L - 4}" y="${T + ph}" font-size="10" text-anchor="end">${fmt(y0)}</text>`,
    `<text x="${L + pw}" y="${T + ph + 14}" font-size="10" text-anchor="end">${x1}</text>`,
    `<text x="${L}" y="${T + ph + 14}" font-size="10">${x0}</text>`,
  ];
  entries.forEach(([name, c], k) => {
    const col = PALETTE[k % PALETTE.length];
    const pts = c.filter((p) => Number.isFinite(p.value)).map((p) =>
      `${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`
    ).join(" ");
    parts.push(
      `<polyline fill="none" stroke="${col}" stroke-width="1.5" points="${pts}"/>`,
      `<text x="${L + pw - 4}" y="${
        T + 12 + k * 13
      }" font-size="10" text-anchor="end" fill="${col}">${esc(name)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${
    esc(title)
  }">${parts.join("")}</svg>`;
}

/** A timeline of one video: one track per row, segments as boxes coloured by class. */
export function timelineSvg(v: VideoTimeline, classColors: Map<string, string>): string {
  const W = 900, L = 150, R = 10, rowH = 22, T = 22;
  const pw = W - L - R;
  const H = T + v.tracks.length * rowH + 18;
  const dur = Math.max(v.duration, 1e-6);
  const x = (t: number) => L + (Math.max(0, Math.min(dur, t)) / dur) * pw;
  const parts = [
    `<text x="0" y="14" font-size="12" font-weight="bold">${esc(v.videoId)} (${
      v.duration.toFixed(1)
    } s)</text>`,
  ];
  v.tracks.forEach((tr, r) => {
    const yy = T + r * rowH;
    parts.push(
      `<text x="0" y="${yy + 14}" font-size="11">${esc(tr.name)} (${tr.items.length})</text>`,
      `<rect x="${L}" y="${yy + 2}" width="${pw}" height="${rowH - 6}" fill="#f4f4f4"/>`,
    );
    for (const it of tr.items) {
      const col = classColors.get(it.label) ?? "#888";
      const op = it.score === undefined ? 0.85 : Math.max(0.15, Math.min(0.9, it.score));
      const w = Math.max(1, x(it.segment[1]) - x(it.segment[0]));
      parts.push(
        `<rect x="${x(it.segment[0]).toFixed(1)}" y="${yy + 2}" width="${w.toFixed(1)}" height="${
          rowH - 6
        }" fill="${col}" fill-opacity="${op.toFixed(2)}"><title>${esc(it.label)} ${
          it.segment[0].toFixed(1)
        }-${it.segment[1].toFixed(1)} s${
          it.score === undefined ? "" : ` score ${it.score.toFixed(3)}`
        }</title></rect>`,
      );
    }
  });
  parts.push(
    `<text x="${L}" y="${H - 2}" font-size="10">0 s</text>`,
    `<text x="${L + pw}" y="${H - 2}" font-size="10" text-anchor="end">${
      v.duration.toFixed(0)
    } s</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="timeline ${
    esc(v.videoId)
  }">${parts.join("")}</svg>`;
}

/** Builds the whole page. */
export function renderReport(d: ReportData): string {
  const labels = [
    ...new Set(d.timelines.flatMap((v) => v.tracks.flatMap((t) => t.items.map((i) => i.label)))),
  ].sort();
  const colors = new Map(labels.map((l, i) => [l, `hsl(${(i * 137.5) % 360},65%,45%)`]));
  const facts = Object.entries(d.facts).map(([k, v]) =>
    `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`
  ).join("");
  const table = `<table class="m"><tr><th>series</th>${
    d.tiou.map((t) => `<th>${t.toFixed(2)}</th>`).join("")
  }<th>avg</th></tr>${
    d.series.map((s) =>
      `<tr><td>${esc(s.name)}</td>${
        s.mAP.map((v) => `<td>${(v * 100).toFixed(1)}</td>`).join("")
      }<td><b>${(s.average * 100).toFixed(1)}</b></td></tr>`
    ).join("")
  }</table>`;
  // One small chart per curve: losses and mAPs live on different scales.
  const curves = Object.entries(d.curves).flatMap(([stage, c]) =>
    Object.entries(c).filter(([, pts]) => pts.length > 0).map(([name, pts]) =>
      curveChartSvg(`${stage}: ${name}`, { [name]: pts })
    )
  ).join("\n");
  const legend = labels.map((l) =>
    `<span class="lg"><i style="background:${colors.get(l)}"></i>${esc(l)}</span>`
  ).join(" ");
  const timelines = d.timelines.map((v) => `<div>${timelineSvg(v, colors)}</div>`).join("\n");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
.lg{display:inline-block;margin-right:10px;font-size:12px}.lg i{display:inline-block;width:10px;height:10px;margin-right:4px}
.curves svg{margin:4px}
</style></head><body>
<h1>${esc(d.title)}</h1>
<table>${facts}</table>
<h2>mAP per tIoU</h2>
${mapChartSvg(d.tiou, d.series)}
${table}
<h2>Training curves</h2>
<div class="curves">${curves || "<p>no curves recorded</p>"}</div>
<h2>Timelines</h2>
<p>${legend}</p>
${timelines || "<p>no videos</p>"}
</body></html>
`;
}
