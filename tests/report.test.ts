import assert from "node:assert/strict";
import * as path from "node:path";
import { classPalette, niceTicks, renderReport } from "../lib/report.ts";
import { findChromium, renderInChromium } from "../lib/chromium.ts";
import { VERSION } from "../lib/version.ts";
import { THUMOS14_CLASSES } from "../datasets/common.ts";

const THUMOS = THUMOS14_CLASSES;

function sampleReport(): string {
  return renderReport({
    title: "report test <run>",
    header: {
      command: "deno run -A mod.ts run --seed 1 --preset default --filter-option gamma=0.3",
      seed: 1,
      preset: "default",
      overrides: { filterOptions: { gamma: 0.3 } },
      version: VERSION,
      backend: "backend wasm (no WebGPU adapter; fastest)",
      date: "2026-11-30T10:00:00.000Z",
    },
    classes: THUMOS,
    curveAxes: { generator: { x: "iteration" }, student: { x: "epoch" } },
    facts: { backend: "wasm", "training (s)": "1.0" },
    tiou: [0.1, 0.3, 0.5, 0.7],
    series: [
      { name: "generator (test)", mAP: [0.5, 0.4, 0.3, 0.1], average: 0.325 },
      { name: "student final (test)", mAP: [0.6, 0.5, 0.35, 0.15], average: 0.4 },
    ],
    curves: {
      generator: {
        loss: [{ step: 0, value: 2 }, { step: 10, value: 1 }, { step: 20, value: 0.7 }],
        testAverageMAP: [{ step: 10, value: 0.21 }, { step: 20, value: 0.33 }],
      },
      student: { loss: [{ step: 0, value: 3 }, { step: 5, value: 1.5 }] },
    },
    timelines: [{
      videoId: "video_validation_0000051",
      duration: 120,
      tracks: [
        { name: "ground truth", items: [{ label: "HighJump", segment: [10, 20] }] },
        {
          name: "raw proposals",
          items: [
            { label: "HighJump", segment: [9, 22], score: 0.8 },
            { label: "LongJump", segment: [60, 75], score: 0.4 },
          ],
        },
      ],
    }],
  });
}

Deno.test("report: self-contained HTML with inline SVG, escaped text, no network", () => {
  const html = sampleReport();
  assert.match(html, /^<!DOCTYPE html>/);
  assert.equal((html.match(/<svg /g) ?? []).length, 5); // mAP chart, 3 curve charts, 1 timeline
  assert.ok(html.includes("report test &lt;run&gt;"));
  assert.ok(!/\b(src|href)=["']https?:/.test(html), "must not load anything from the network");
  assert.ok(!html.includes("<script"), "no scripts needed");
});

Deno.test("report: header, labelled axes with units, ticks, mAP in %", () => {
  const html = sampleReport();
  for (const k of ["command", "seed", "preset", "option overrides", "version", "backend", "date"]) {
    assert.ok(html.includes(`<th>${k}</th>`), `header row ${k}`);
  }
  assert.ok(html.includes("filterOptions={&quot;gamma&quot;:0.3}"));
  assert.ok(html.includes(`<code>${VERSION}</code>`));
  // Axis labels: iteration / epoch on training curves, units on every y axis.
  assert.ok(html.includes(">iteration</text>") && html.includes(">epoch</text>"));
  assert.ok(html.includes(">testAverageMAP (%)</text>"), "curve mAP is in %");
  assert.ok(html.includes(">21</text>") || html.includes("testAverageMAP 21"), "0.21 -> 21 %");
  assert.ok(html.includes(">mAP (%)</text>") && html.includes(">tIoU</text>"));
  assert.ok(html.includes(">time (s)</text>"));
  // Every chart has more than two ticks per axis.
  for (const svg of html.match(/<svg [\s\S]*?<\/svg>/g)!.slice(1, 4)) {
    const ticks = (svg.match(/text-anchor="end">[^<]+<\/text>/g) ?? []).length;
    assert.ok(ticks >= 3, `curve chart has ${ticks} y ticks`);
  }
  assert.deepEqual(niceTicks(0, 20), [0, 5, 10, 15, 20]);
  assert.ok(niceTicks(0.7, 3).length >= 3);
  assert.ok(niceTicks(5, 5).length >= 3, "a flat curve still gets three ticks");
  // Class boxes name their class on hover.
  assert.match(html, /fill="#[0-9a-f]{6}" fill-opacity="[\d.]+"><title>LongJump 60\.0-75\.0 s/);
});

// sRGB / hsl() -> CIELAB, for colour distances (CIE76 delta E).
function toRgb(c: string): number[] {
  const hex = c.match(/^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i);
  if (hex) return hex.slice(1).map((h) => parseInt(h, 16) / 255);
  const [h, s, l] = c.match(/[\d.]+/g)!.map(Number);
  const S = s / 100, L = l / 100, a = S * Math.min(L, 1 - L);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return L - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
  };
  return [f(0), f(8), f(4)];
}
function toLab(c: string): number[] {
  const lin = toRgb(c).map((v) => v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  const [r, g, b] = lin;
  const xyz = [
    (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
    0.2126 * r + 0.7152 * g + 0.0722 * b,
    (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
  ].map((v) => v > 0.008856 ? Math.cbrt(v) : 7.787 * v + 16 / 116);
  return [116 * xyz[1] - 16, 500 * (xyz[0] - xyz[1]), 200 * (xyz[1] - xyz[2])];
}
const dE = (a: number[], b: number[]) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

Deno.test("report: class colours stay distinct for 20 and 200 classes", () => {
  for (const [n, minAll, minNeighbours] of [[20, 10, 10], [200, 12, 15]] as const) {
    const lab = classPalette(n).map(toLab);
    assert.equal(new Set(classPalette(n)).size, n, `${n} colours are all different`);
    let all = Infinity, near = Infinity;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const d = dE(lab[i], lab[j]);
        all = Math.min(all, d);
        if (j - i <= 3) near = Math.min(near, d);
      }
    }
    assert.ok(all >= minAll, `${n} classes: closest pair delta E ${all.toFixed(1)}`);
    assert.ok(near >= minNeighbours, `${n} classes: closest ids delta E ${near.toFixed(1)}`);
  }
});

Deno.test("report: VERSION is deno.json's version", async () => {
  const cfg = JSON.parse(
    await Deno.readTextFile(path.join(import.meta.dirname!, "..", "deno.json")),
  );
  assert.equal(VERSION, cfg.version);
});

Deno.test("report: renders in headless Chromium at 1400 px wide", async () => {
  const chromium = await findChromium();
  if (!chromium) {
    console.log("SKIP: chromium not installed (Debian package `chromium`)");
    return;
  }
  const dir = await Deno.makeTempDir();
  const file = path.join(dir, "report.html");
  await Deno.writeTextFile(file, sampleReport());
  const r = await renderInChromium(chromium, file, 1400, 1600);
  assert.ok(r.dom.includes("<svg"), "DOM after load has the charts");
  assert.ok(r.dom.includes("video_validation_0000051"));
  assert.ok(r.screenshotBytes > 10_000, `screenshot is ${r.screenshotBytes} bytes`);
  // PNG IHDR: width and height (big-endian) at bytes 16..24.
  const png = await Deno.readFile(r.screenshot);
  const view = new DataView(png.buffer, png.byteOffset);
  assert.equal(view.getUint32(16), 1400);
  assert.equal(view.getUint32(20), 1600);
  console.log(`screenshot: ${r.screenshot}`);
});
