// Every kind of bad input gives a one-line InputError naming the file (and video); the CLI
// exits 2 with one stderr line and no stdout.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { assertEquals, assertRejects, tempDir } from "./datasets_helpers.ts";
import { InputError } from "../lib/errors.ts";
import { inspectDataset } from "../cli/inspect.ts";
import { openDataset } from "../datasets.ts";
import { encodeNpy } from "../datasets/npy.ts";
import { synthesize } from "../datasets/synth.ts";

type Fmt = "npy" | "npy.gz" | "npz" | "zip";

async function withSet(format: Fmt, fn: (root: string, af: string, co: string) => Promise<void>) {
  const dir = await tempDir();
  try {
    await synthesize({ out: dir, videos: 4, dim: 4, format });
    await fn(dir, path.join(dir, "actionformer"), path.join(dir, "cola"));
  } finally {
    await fs.rm(dir, { recursive: true });
  }
}

async function firstVideo(af: string): Promise<string> {
  const j = JSON.parse(await Deno.readTextFile(path.join(af, "annotations/thumos14.json")));
  return Object.keys(j.database).sort()[0];
}

// deno-lint-ignore no-explicit-any
async function editJson(file: string, f: (j: Record<string, any>) => void) {
  const j = JSON.parse(await Deno.readTextFile(file));
  f(j);
  await Deno.writeTextFile(file, JSON.stringify(j));
}

Deno.test("datasets bad input: truncated / corrupt .npy.gz", async () => {
  await withSet("npy.gz", async (_root, af) => {
    const vid = await firstVideo(af);
    const file = path.join(af, "i3d_features", `${vid}.npy.gz`);
    const b = await Deno.readFile(file);
    await Deno.writeFile(file, b.subarray(0, b.length - 40));
    const e = await assertRejects(inspectDataset(af), InputError, /corrupt or truncated gzip/);
    if (!e.message.includes(file) || !e.message.includes(vid)) throw new Error(e.message);
  });
});

Deno.test("datasets bad input: corrupt .npz member and truncated features .zip", async () => {
  await withSet("npz", async (_root, af, co) => {
    const vid = await firstVideo(af);
    const file = path.join(af, "i3d_features", `${vid}.npz`);
    const b = await Deno.readFile(file);
    for (let i = 90; i < 120; i++) b[i] ^= 0x33;
    await Deno.writeFile(file, b);
    await assertRejects(
      inspectDataset(af),
      InputError,
      new RegExp(`${vid}\\.npz.*${vid}|${vid}\\.npz`),
    );
    const rgb = (await fs.readdir(path.join(co, "features/train/rgb")))[0];
    const f2 = path.join(co, "features/train/rgb", rgb);
    await Deno.writeFile(f2, (await Deno.readFile(f2)).subarray(0, 50));
    await assertRejects(inspectDataset(co), InputError, /not a zip archive or truncated/);
  });
  await withSet("zip", async (_root, af) => {
    const z = path.join(af, "i3d_features.zip");
    const b = await Deno.readFile(z);
    await Deno.writeFile(z, b.subarray(0, b.length - 100));
    await assertRejects(inspectDataset(af), InputError, /i3d_features\.zip: .*truncated/);
  });
});

Deno.test("datasets bad input: bad .npy header and size mismatch", async () => {
  await withSet("npy", async (_root, af) => {
    const vid = await firstVideo(af);
    const file = path.join(af, "i3d_features", `${vid}.npy`);
    const b = await Deno.readFile(file);
    await Deno.writeFile(file, b.subarray(0, b.length - 8));
    await assertRejects(
      inspectDataset(af),
      InputError,
      new RegExp(`${vid}\\.npy: .npy data is .* needs`),
    );
    b[20] = 0x7e; // inside 'descr'
    const text = String.fromCharCode(...b.subarray(0, 128)).replace("'<f4'", "'<i8'");
    b.set(Uint8Array.from(text, (c) => c.charCodeAt(0)));
    await Deno.writeFile(file, b);
    await assertRejects(inspectDataset(af), InputError, /unsupported .npy dtype|bad .npy header/);
  });
});

Deno.test("datasets bad input: NaN / Inf values and differing dims", async () => {
  await withSet("npy", async (_root, af) => {
    const vid = await firstVideo(af);
    const file = path.join(af, "i3d_features", `${vid}.npy`);
    const data = new Float32Array(40).fill(0.5);
    data[13] = NaN;
    await Deno.writeFile(file, encodeNpy(data, [10, 4]));
    await assertRejects(
      inspectDataset(af),
      InputError,
      new RegExp(`${vid}.*non-finite value NaN at row 3`),
    );
    data[13] = Infinity;
    await Deno.writeFile(file, encodeNpy(data, [10, 4]));
    await assertRejects(inspectDataset(af), InputError, /non-finite value Infinity/);
    await Deno.writeFile(file, encodeNpy(new Float32Array(50), [10, 5]));
    await assertRejects(
      inspectDataset(af),
      InputError,
      /feature dim 5 differs from 4|feature dim 4 differs from 5/,
    );
  });
});

Deno.test("datasets bad input: annotated videos without features are skipped (--strict: error)", async () => {
  await withSet("npy", async (_root, af, co) => {
    const vid = await firstVideo(af);
    const file = path.join(af, "i3d_features", `${vid}.npy`);
    await fs.rm(file);
    const warnings: string[] = [];
    const ds = await openDataset(af, { onWarning: (l) => warnings.push(l) });
    assertEquals(ds.list().length, 3);
    assertEquals(warnings.length, 1);
    if (!/1 annotated video\(s\) have no feature file and are skipped; first: /.test(warnings[0])) {
      throw new Error(warnings[0]);
    }
    if (!warnings[0].includes(vid) || !warnings[0].includes("thumos14.json")) {
      throw new Error(warnings[0]);
    }
    const s = await inspectDataset(af);
    assertEquals([s.videos.train + s.videos.test, s.skipped], [3, 1]);
    await assertRejects(
      inspectDataset(af, { strict: true }),
      InputError,
      new RegExp(`video ${vid} .*has no feature file: expected ${file.replaceAll(".", "\\.")}`),
    );
    // A split left without any video is an error, strict or not.
    const j = JSON.parse(await Deno.readTextFile(path.join(af, "annotations/thumos14.json")));
    for (const [id, v] of Object.entries(j.database) as [string, { subset: string }][]) {
      if (v.subset === "Test") {
        await fs.rm(path.join(af, "i3d_features", `${id}.npy`), { force: true });
      }
    }
    await assertRejects(
      openDataset(af, { onWarning: () => {} }),
      InputError,
      /thumos14\.json: none of the \d+ test video\(s\) has a feature file/,
    );
    const flow = path.join(co, "features", "train", "flow");
    const one = (await fs.readdir(flow))[0];
    await fs.rm(path.join(flow, one));
    await assertRejects(
      inspectDataset(co, { strict: true }),
      InputError,
      /has no feature file: expected .*flow/,
    );
  });
});

Deno.test("datasets bad input: unknown class, reversed segment; late segments warn", async () => {
  await withSet("npy", async (_root, af, co) => {
    const ann = path.join(af, "annotations/thumos14.json");
    const vid = await firstVideo(af);
    await editJson(ann, (j) => (j.database[vid].annotations[0].label = "Juggling"));
    await assertRejects(
      openDataset(af),
      InputError,
      new RegExp(`video ${vid}: unknown class "Juggling"`),
    );
    let dur = 0;
    await editJson(ann, (j) => {
      const a = j.database[vid].annotations[0];
      dur = j.database[vid].duration;
      a.label = "Diving";
      a.segment = [dur + 50, dur + 60];
    });
    // Past the end: loaded, one warning line naming the file, the count and the video.
    const warnings: string[] = [];
    const ds = await openDataset(af, { onWarning: (l) => warnings.push(l) });
    assertEquals(warnings.length, 1);
    if (
      !new RegExp(
        `thumos14\\.json: 1 segment\\(s\\) end after their video \\(1 start .*video ${vid}`,
      ).test(warnings[0])
    ) {
      throw new Error(warnings[0]);
    }
    // The metadata (and so the evaluation ground truth) keeps it as the file gives it.
    const m = ds.list().find((x) => x.id === vid)!;
    assertEquals(m.annotations[0].segment, [dur + 50, dur + 60]);
    await assertRejects(
      openDataset(af, { strict: true }),
      InputError,
      new RegExp(`1 segment\\(s\\) end after their video.*${vid}.*--strict`),
    );
    await editJson(ann, (j) => (j.database[vid].annotations[0].segment = [12, 11]));
    await assertRejects(
      openDataset(af),
      InputError,
      new RegExp(`thumos14\\.json: video ${vid}: segment \\[12, 11\\] ends before it starts`),
    );
    await editJson(ann, (j) => (j.database[vid].annotations[0].segment = [-3, 2]));
    await assertRejects(openDataset(af), InputError, /starts before 0/);
    const gt = path.join(co, "gt.json");
    await editJson(gt, (j) => {
      const id = Object.keys(j.database)[0];
      j.database[id].annotations[0].segment = ["12", "x"];
    });
    await assertRejects(openDataset(co), InputError, /gt\.json: video .*is not numeric/);
  });
});

Deno.test("datasets bad input: the CLI exits 2 with one line and no stdout", async () => {
  await withSet("npy", async (_root, af) => {
    const vid = await firstVideo(af);
    await fs.rm(path.join(af, "i3d_features", `${vid}.npy`));
    const mod = new URL("../mod.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", mod, "inspect", "--root", af, "--strict", "--json"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 2);
    assertEquals(new TextDecoder().decode(out.stdout), "");
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").filter((l) =>
      !/Warning|│|╭|╰/.test(l)
    );
    assertEquals(err.length, 1, err.join("\n"));
    if (!err[0].includes(vid)) throw new Error(err[0]);
    // Without --strict: exit 0, one warning line, the skipped count in the summary.
    const ok = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", mod, "inspect", "--root", af, "--json"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(ok.code, 0);
    const warn = new TextDecoder().decode(ok.stderr).trim().split("\n").filter((l) =>
      !/Warning|│|╭|╰/.test(l) && l.trim() !== ""
    );
    assertEquals(warn.length, 1, warn.join("\n"));
    if (!warn[0].startsWith("warning: ") || !warn[0].includes(vid)) throw new Error(warn[0]);
    const summary = JSON.parse(new TextDecoder().decode(ok.stdout).trim().split("\n").at(-1)!);
    assertEquals([summary.videos.train + summary.videos.test, summary.skipped], [3, 1]);
    // `inspect --checksum` words the same warning the same way.
    const sums = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", mod, "inspect", "--root", af, "--checksum"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(sums.code, 0);
    const sumWarn = new TextDecoder().decode(sums.stderr).trim().split("\n").filter((l) =>
      !/Warning|│|╭|╰/.test(l) && l.trim() !== ""
    );
    assertEquals(sumWarn, warn);
  });
});
