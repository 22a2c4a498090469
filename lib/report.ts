/**
 * `report.html`: one self-contained page (inline SVG and CSS, no script, no network) that
 * shows a run at a glance: a header (command, seed, preset, option overrides, version,
 * backend, date), mAP per tIoU for every stage, training curves, and timelines of a few
 * videos (ground truth, raw proposals, selected pseudo labels, final detections).
 *
 * Conventions: mAP is shown in % everywhere; every chart has labelled axes with units and at
 * least three ticks per axis; classes get colours of a categorical palette (distinct for the
 * 20 THUMOS'14 classes, spread over hue and lightness for ActivityNet's 200) and every coloured
 * mark names its class in a hover title.
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

/** What started a run, shown at the top of the report. */
export interface ReportHeader {
  /** The command line (or library call) that started the run. */
  command: string;
  /** Seed of the run. */
  seed: number;
  /** Hyper-parameter preset. */
  preset: string;
  /** Options set beyond the defaults (name -> value). */
  overrides: Record<string, unknown>;
  /** Package version. */
  version: string;
  /** Compute backend, as described in the logs. */
  backend: string;
  /** When the report was written (ISO 8601). */
  date: string;
}

/** Axis names of a stage's training curves. */
export interface CurveAxes {
  /** What the x axis counts (`iteration`, `epoch`). */
  x: string;
}

/** Everything the report draws. */
export interface ReportData {
  /** Page title. */
  title: string;
  /** Run header (absent: not shown). */
  header?: ReportHeader;
  /**
   * Every class of the dataset, in id order: fixes each class's colour (default: the labels drawn).
   */
  classes?: readonly string[];
  /** Per stage of `curves`: what the x axis counts (default `step`). */
  curveAxes?: Record<string, CurveAxes>;
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

// A 20-colour categorical palette (Tableau 20: ten hues, dark and light).
const CATEGORICAL_20 = [
  "#1f77b4",
  "#aec7e8",
  "#ff7f0e",
  "#ffbb78",
  "#2ca02c",
  "#98df8a",
  "#d62728",
  "#ff9896",
  "#9467bd",
  "#c5b0d5",
  "#8c564b",
  "#c49c94",
  "#e377c2",
  "#f7b6d2",
  "#7f7f7f",
  "#c7c7c7",
  "#bcbd22",
  "#dbdb8d",
  "#17becf",
  "#9edae5",
];

function srgbToLab(r: number, g: number, b: number): [number, number, number] {
  const lin = [r, g, b].map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  const x = f((0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047);
  const y = f(0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]);
  const z = f((0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883);
  return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
}

/**
 * `n` class colours, as distinct as a simple rule allows: the 20-colour categorical palette
 * first (all of THUMOS'14), then, for larger sets (ActivityNet's 200), colours picked one by
 * one from a grid of the sRGB cube, each the farthest (CIELAB distance) from all picked so far,
 * leaving out colours too light for the page or too dark to see. Deterministic.
 */
export function classPalette(n: number): string[] {
  const out = CATEGORICAL_20.slice(0, n);
  if (n <= out.length) return out;
  const hex = (v: number) => v.toString(16).padStart(2, "0");
  const cand: { color: string; lab: [number, number, number] }[] = [];
  for (let r = 0; r <= 255; r += 17) {
    for (let g = 0; g <= 255; g += 17) {
      for (let b = 0; b <= 255; b += 17) {
        const lab = srgbToLab(r, g, b);
        if (lab[0] >= 25 && lab[0] <= 88) cand.push({ color: `#${hex(r)}${hex(g)}${hex(b)}`, lab });
      }
    }
  }
  const dist = new Float64Array(cand.length).fill(Infinity);
  const take = (lab: [number, number, number]) => {
    for (let k = 0; k < cand.length; k++) {
      const c = cand[k].lab;
      const d = (c[0] - lab[0]) ** 2 + (c[1] - lab[1]) ** 2 + (c[2] - lab[2]) ** 2;
      if (d < dist[k]) dist[k] = d;
    }
  };
  for (const c of out) {
    take(srgbToLab(
      ...([1, 3, 5].map((p) => parseInt(c.slice(p, p + 2), 16)) as [
        number,
        number,
        number,
      ]),
    ));
  }
  while (out.length < n) {
    let best = 0;
    for (let k = 1; k < cand.length; k++) if (dist[k] > dist[best]) best = k;
    out.push(cand[best].color);
    take(cand[best].lab);
  }
  return out;
}

/** About `n` round tick values covering [lo, hi] (at least three). */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / Math.max(2, n - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  if (out[out.length - 1] < hi - step * 1e-9) out.push(out[out.length - 1] + step);
  while (out.length < 3) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** A line chart of mAP (%) per tIoU. */
export function mapChartSvg(tiou: number[], series: MapSeries[]): string {
  const W = 760, H = 300, L = 50, R = 290, T = 20, B = 40;
  const pw = W - L - R, ph = H - T - B;
  const top = Math.max(10, ...series.flatMap((s) => s.mAP.map((v) => v * 100)));
  const yTicks = niceTicks(0, Math.min(100, top * 1.05), 6);
  const maxY = yTicks[yTicks.length - 1];
  const x = (i: number) => L + (tiou.length > 1 ? (i / (tiou.length - 1)) * pw : pw / 2);
  const y = (v: number) => T + ph - (v / maxY) * ph;
  const parts: string[] = [];
  for (const v of yTicks) {
    parts.push(
      `<line x1="${L}" x2="${L + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${tickLabel(v)}</text>`,
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
      parts.push(
        `<circle cx="${x(i)}" cy="${y(v * 100)}" r="3" fill="${c}"><title>${esc(s.name)} @ tIoU ${
          tiou[i].toFixed(2)
        }: ${(v * 100).toFixed(1)} %</title></circle>`,
      )
    );
    parts.push(
      `<rect x="${L + pw + 12}" y="${T + k * 18}" width="12" height="4" fill="${c}"/>`,
      `<text x="${L + pw + 28}" y="${T + k * 18 + 6}" font-size="11">${esc(s.name)} (avg ${
        (s.average * 100).toFixed(1)
      } %)</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="mAP per tIoU">${
    parts.join("")
  }</svg>`;
}

/** Axis labels of {@linkcode curveChartSvg}, units included (e.g. `iteration`, `mAP (%)`). */
export interface ChartAxes {
  /** x axis label. */
  x: string;
  /** y axis label. */
  y: string;
}

/** A line chart of one or more curves sharing an x axis: labelled axes, ticks and a grid. */
export function curveChartSvg(
  title: string,
  curves: Record<string, CurvePoint[]>,
  axes: ChartAxes = { x: "step", y: "value" },
): string {
  const entries = Object.entries(curves).filter(([, c]) => c.length > 0);
  const W = 440, H = 230, L = 62, R = 14, T = 28, B = 46;
  const pw = W - L - R, ph = H - T - B;
  const xs = entries.flatMap(([, c]) => c.map((p) => p.step));
  const ys = entries.flatMap(([, c]) => c.map((p) => p.value)).filter(Number.isFinite);
  const xt = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1);
  const yt = niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1);
  const x0 = xt[0], x1 = xt[xt.length - 1], y0 = yt[0], y1 = yt[yt.length - 1];
  const x = (v: number) => L + ((v - x0) / (x1 - x0)) * pw;
  const y = (v: number) => T + ph - ((v - y0) / (y1 - y0)) * ph;
  const parts = [
    `<text x="${L}" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`,
  ];
  for (const v of yt) {
    parts.push(
      `<line x1="${L}" x2="${L + pw}" y1="${y(v).toFixed(1)}" y2="${
        y(v).toFixed(1)
      }" stroke="#e4e4e4"/>`,
      `<text x="${L - 5}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${
        tickLabel(v)
      }</text>`,
    );
  }
  for (const v of xt) {
    parts.push(
      `<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${T + ph}" y2="${
        T + ph + 4
      }" stroke="#999"/>`,
      `<text x="${x(v).toFixed(1)}" y="${T + ph + 17}" font-size="11" text-anchor="middle">${
        tickLabel(v)
      }</text>`,
    );
  }
  parts.push(
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#999"/>`,
    `<line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#999"/>`,
    `<text x="${L + pw / 2}" y="${H - 6}" font-size="12" text-anchor="middle">${
      esc(axes.x)
    }</text>`,
    `<text x="14" y="${T + ph / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${
      T + ph / 2
    })">${esc(axes.y)}</text>`,
  );
  entries.forEach(([name, c], k) => {
    const col = PALETTE[k % PALETTE.length];
    const ok = c.filter((p) => Number.isFinite(p.value));
    const pts = ok.map((p) => `${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    parts.push(
      `<polyline fill="none" stroke="${col}" stroke-width="1.5" points="${pts}"><title>${
        esc(name)
      }</title></polyline>`,
    );
    if (ok.length <= 40) {
      for (const p of ok) {
        parts.push(
          `<circle cx="${x(p.step).toFixed(1)}" cy="${
            y(p.value).toFixed(1)
          }" r="2.5" fill="${col}">` +
            `<title>${esc(axes.x)} ${p.step}: ${esc(name)} ${tickLabel(p.value)}</title></circle>`,
        );
      }
    }
    if (entries.length > 1) {
      parts.push(
        `<text x="${L + pw - 4}" y="${
          T + 12 + k * 13
        }" font-size="11" text-anchor="end" fill="${col}">${esc(name)}</text>`,
      );
    }
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${
    esc(title)
  }">${parts.join("")}</svg>`;
}

/** A timeline of one video: one track per row, segments as boxes coloured by class. */
export function timelineSvg(v: VideoTimeline, classColors: Map<string, string>): string {
  const W = 1300, L = 170, R = 14, rowH = 22, T = 22;
  const pw = W - L - R;
  const H = T + v.tracks.length * rowH + 34;
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
  const axisY = T + v.tracks.length * rowH;
  parts.push(`<line x1="${L}" x2="${L + pw}" y1="${axisY}" y2="${axisY}" stroke="#999"/>`);
  for (const t of niceTicks(0, dur, 8).filter((t) => t <= dur + 1e-9)) {
    parts.push(
      `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${axisY}" y2="${
        axisY + 4
      }" stroke="#999"/>`,
      `<text x="${x(t).toFixed(1)}" y="${axisY + 15}" font-size="10" text-anchor="middle">${
        tickLabel(t)
      }</text>`,
    );
  }
  parts.push(
    `<text x="${L - 8}" y="${axisY + 15}" font-size="10" text-anchor="end">time (s)</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="timeline ${
    esc(v.videoId)
  }">${parts.join("")}</svg>`;
}

/** The y axis label and scale of a training curve: mAP and accuracy in %, others as they are. */
function curveUnit(name: string): { label: string; scale: number } {
  return /map|accuracy/i.test(name)
    ? { label: `${name} (%)`, scale: 100 }
    : { label: name, scale: 1 };
}

function headerTable(h: ReportHeader): string {
  const over = Object.entries(h.overrides);
  const rows: [string, string][] = [
    ["command", h.command],
    ["seed", String(h.seed)],
    ["preset", h.preset],
    [
      "option overrides",
      over.length ? over.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") : "none",
    ],
    ["version", h.version],
    ["backend", h.backend],
    ["date", h.date],
  ];
  return `<table class="hdr">${
    rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td><code>${esc(v)}</code></td></tr>`).join("")
  }</table>`;
}

/** Builds the whole page. */
export function renderReport(d: ReportData): string {
  const drawn = [
    ...new Set(d.timelines.flatMap((v) => v.tracks.flatMap((t) => t.items.map((i) => i.label)))),
  ].sort();
  const classes = d.classes?.length ? [...d.classes] : drawn;
  for (const l of drawn) if (!classes.includes(l)) classes.push(l);
  const palette = classPalette(classes.length);
  const colors = new Map(classes.map((l, i) => [l, palette[i]]));
  const facts = Object.entries(d.facts).map(([k, v]) =>
    `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`
  ).join("");
  const table = `<table class="m"><tr><th>mAP (%) @ tIoU</th>${
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
    Object.entries(c).filter(([, pts]) => pts.length > 0).map(([name, pts]) => {
      const u = curveUnit(name);
      const xName = d.curveAxes?.[stage]?.x ?? "step";
      return curveChartSvg(
        `${stage}: ${name}`,
        { [name]: pts.map((p) => ({ step: p.step, value: p.value * u.scale })) },
        { x: xName, y: u.label },
      );
    })
  ).join("\n");
  const legend = drawn.map((l) =>
    `<span class="lg" title="${esc(l)}"><i style="background:${colors.get(l)}"></i>${esc(l)}</span>`
  ).join(" ");
  const timelines = d.timelines.map((v) => `<div>${timelineSvg(v, colors)}</div>`).join("\n");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1340px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
.hdr td{text-align:left}.hdr code{white-space:pre-wrap;word-break:break-all}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.lg{display:inline-block;margin-right:10px;font-size:12px}.lg i{display:inline-block;width:10px;height:10px;margin-right:4px}
.curves svg{margin:4px}
</style></head><body>
<h1>${esc(d.title)}</h1>
${d.header ? headerTable(d.header) : ""}
<h2>Run</h2>
<table>${facts}</table>
<h2>mAP (%) per tIoU</h2>
<div class="row">${mapChartSvg(d.tiou, d.series)}
${table}</div>
<h2>Training curves</h2>
<div class="curves">${curves || "<p>no curves recorded</p>"}</div>
<h2>Timelines</h2>
<p>Boxes are coloured by class (hover a box for its class, time and score); scored boxes are
more opaque the higher their score.</p>
<p>${legend}</p>
${timelines || "<p>no videos</p>"}
</body></html>
`;
}
