import assert from "node:assert/strict";
import * as path from "node:path";
import { renderReport } from "../lib/report.ts";
import { findChromium, renderInChromium } from "../lib/chromium.ts";

function sampleReport(): string {
  return renderReport({
    title: "report test <run>",
    facts: { backend: "wasm", "training (s)": "1.0" },
    tiou: [0.1, 0.3, 0.5, 0.7],
    series: [
      { name: "generator (test)", mAP: [0.5, 0.4, 0.3, 0.1], average: 0.325 },
      { name: "student final (test)", mAP: [0.6, 0.5, 0.35, 0.15], average: 0.4 },
    ],
    curves: {
      generator: {
        loss: [{ step: 0, value: 2 }, { step: 10, value: 1 }, { step: 20, value: 0.7 }],
      },
      student: { loss: [{ step: 0, value: 3 }, { step: 5, value: 1.5 }] },
    },
    timelines: [{
      videoId: "video_validation_0000051",
      duration: 120,
      tracks: [
        { name: "ground truth", items: [{ label: "HighJump", segment: [10, 20] }] },
        { name: "raw proposals", items: [{ label: "HighJump", segment: [9, 22], score: 0.8 }] },
      ],
    }],
  });
}

Deno.test("report: self-contained HTML with inline SVG, escaped text, no network", () => {
  const html = sampleReport();
  assert.match(html, /^<!DOCTYPE html>/);
  assert.equal((html.match(/<svg /g) ?? []).length, 4); // mAP chart, 2 curve charts, 1 timeline
  assert.ok(html.includes("report test &lt;run&gt;"));
  assert.ok(!/\b(src|href)=["']https?:/.test(html), "must not load anything from the network");
  assert.ok(!html.includes("<script"), "no scripts needed");
});

Deno.test("report: renders in headless Chromium", async () => {
  const chromium = await findChromium();
  if (!chromium) {
    console.log("SKIP: chromium not installed (Debian package `chromium`)");
    return;
  }
  const dir = await Deno.makeTempDir();
  const file = path.join(dir, "report.html");
  await Deno.writeTextFile(file, sampleReport());
  const r = await renderInChromium(chromium, file);
  assert.ok(r.dom.includes("<svg"), "DOM after load has the charts");
  assert.ok(r.dom.includes("video_validation_0000051"));
  assert.ok(r.screenshotBytes > 10_000, `screenshot is ${r.screenshotBytes} bytes`);
});
