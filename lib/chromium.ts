/**
 * Headless Chromium helper for rendering checks of `report.html` (tests and the `--check`
 * of reports). Uses the Debian `chromium` binary; returns null when it is absent.
 *
 * @module
 */

/** Path of a Chromium binary, or null. */
export async function findChromium(): Promise<string | null> {
  for (const p of ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) {
    try {
      await Deno.stat(p);
      return p;
    } catch { /* next */ }
  }
  return null;
}

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Loads `file` in headless Chromium and returns the serialised DOM after load, and a PNG
 * screenshot (its path and size in bytes) of a window `width` px wide and `height` px high.
 */
export async function renderInChromium(
  chromium: string,
  file: string,
  width = 1400,
  height = 1600,
): Promise<{ dom: string; screenshotBytes: number; screenshot: string }> {
  const profile = await Deno.makeTempDir({ prefix: "fustal-chromium-" });
  const url = new URL(`file://${file}`).href;
  try {
    const dom = await new Deno.Command(chromium, {
      args: [...FLAGS, `--user-data-dir=${profile}`, "--dump-dom", url],
      stdout: "piped",
      stderr: "null",
    }).output();
    const shot = `${profile}/shot.png`;
    await new Deno.Command(chromium, {
      args: [
        ...FLAGS,
        `--user-data-dir=${profile}/2`,
        `--window-size=${width},${height}`,
        "--hide-scrollbars",
        `--screenshot=${shot}`,
        url,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    let bytes = 0;
    const keep = `${await Deno.makeTempDir({ prefix: "fustal-shot-" })}/report.png`;
    try {
      bytes = (await Deno.stat(shot)).size;
      await Deno.copyFile(shot, keep);
    } catch { /* no screenshot */ }
    return { dom: new TextDecoder().decode(dom.stdout), screenshotBytes: bytes, screenshot: keep };
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}
