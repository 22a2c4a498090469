// The student's backbone / neck / head seam (stages/training/model/): the composed network is
// the pre-split network bit for bit (tests/training_model_reference.ts), the registry resolves
// config names, and a backbone registered here swaps in and trains through the unchanged
// training stage.
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { tf } from "../deps.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import { conv1d, maxPool3s2 } from "../stages/training/ops.ts";
import { forward, initValues, type ParamSpec, paramSpecs } from "../stages/training/model.ts";
import {
  BACKBONES,
  DEFAULT_PARTS,
  HEADS,
  modelParts,
  NECKS,
  registerBackbone,
} from "../stages/training/model/registry.ts";
import { DEFAULT, PAPER, type StudentConfig } from "../stages/training/presets.ts";
import { CHECKPOINT_FILE, loadStudent, trainStudent } from "../stages/training/train.ts";
import { referenceForward, referenceParamSpecs } from "./training_model_reference.ts";
import { jitteredLabels, TINY_STUDENT, tinyDataset } from "./training_fixtures.ts";

const TINY: StudentConfig = TINY_STUDENT;

/** Configurations that reach every branch of the spec builders. */
const VARIANTS: [string, StudentConfig][] = [
  ["paper", PAPER],
  ["default", DEFAULT],
  ["tiny", TINY],
  ["tiny, 2 head layers, SGP branches", {
    ...TINY,
    headLayers: 2,
    sgpBranches: true,
    sgpInitStd: 0.1,
  }],
  ["tiny, 1 head layer, 2 embed layers, no stem", { ...TINY, headLayers: 1, embedLayers: 2 }],
];

Deno.test("model seam: parameter names, shapes, order, decay and init equal the pre-split network", () => {
  for (const [label, cfg] of VARIANTS) {
    for (const opts of [{}, { branches: true }, { branches: false }]) {
      const got = paramSpecs(cfg, 12, 5, opts);
      const want = referenceParamSpecs(cfg, 12, 5, opts);
      assert.deepEqual(got, want, `${label} ${JSON.stringify(opts)}`);
    }
  }
  // Naming the default parts explicitly changes nothing.
  const named = { ...TINY, ...DEFAULT_PARTS } as StudentConfig;
  assert.deepEqual(paramSpecs(named, 12, 5), referenceParamSpecs(TINY, 12, 5));
  // The same seed gives the same initial values.
  const cfg = VARIANTS[3][1];
  const a = initValues(paramSpecs(cfg, 6, 3), new Rng(9));
  const b = initValues(referenceParamSpecs(cfg, 6, 3), new Rng(9));
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, v] of a) assert.deepEqual(v, b.get(k), k);
});

/** Outputs and gradients of `fwd` on one random batch, as host arrays. */
function run(
  fwd: typeof forward,
  cfg: StudentConfig,
  specs: ParamSpec[],
  training: boolean,
): Record<string, Float32Array> {
  const D = 6, B = 2, t0 = cfg.maxSeqLen;
  const vals = initValues(specs, new Rng(4));
  const vars = Object.fromEntries(
    specs.map((p) => [
      p.name,
      tf.variable(tf.tensor(vals.get(p.name)!, p.shape), true, `seam${Math.random()}/${p.name}`),
    ]),
  );
  const rng = new Rng(5);
  const x = Float32Array.from({ length: B * t0 * D }, () => rng.next());
  const lens = [t0, 40];
  const dropPath = Array.from(
    { length: cfg.levels - 1 },
    () => [Float32Array.from([1 / 0.9, 0]), Float32Array.from([0, 1 / 0.9])],
  ) as [Float32Array, Float32Array][];
  const host: Record<string, Float32Array> = {};
  const { value, grads } = tf.variableGrads(() => {
    const o = fwd(vars, cfg, { x, lens, t0, dim: D, dropPath }, training);
    for (const k of ["cls", "start", "end", "off", "valid"] as const) {
      host[`out.${k}`] = o[k].dataSync() as Float32Array;
    }
    // Weights that differ per output and per position make every gradient depend on all rows.
    const w = (t: tf.Tensor, k: number) =>
      tf.sum(tf.mul(t, tf.sin(tf.add(tf.range(0, t.size).reshape(t.shape), k))));
    return tf.addN([w(o.cls, 0), w(o.start, 1), w(o.end, 2), w(o.off, 3)]) as tf.Scalar;
  }, Object.values(vars));
  host.loss = value.dataSync() as Float32Array;
  for (const [k, g] of Object.entries(grads)) {
    host[`grad.${k.slice(k.indexOf("/") + 1)}`] = g.dataSync() as Float32Array;
  }
  tf.dispose([value, ...Object.values(grads), ...Object.values(vars)]);
  return host;
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`model seam: outputs and gradients equal the pre-split network bit for bit (${backend})`, async () => {
    await initBackend(backend);
    for (const [label, cfg] of VARIANTS.slice(2)) {
      for (const training of [true, false]) {
        const before = tf.memory().numTensors;
        const got = tf.tidy(() => run(forward, cfg, paramSpecs(cfg, 6, 3), training));
        const want = tf.tidy(() =>
          run(referenceForward, cfg, referenceParamSpecs(cfg, 6, 3), training)
        );
        assert.equal(tf.memory().numTensors, before, "no tensor leaks");
        assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
        for (const k of Object.keys(want)) {
          assert.ok(
            want[k].some((v) => v !== 0) || k.startsWith("grad."),
            `${label}: ${k} is all 0`,
          );
          assert.deepEqual(got[k], want[k], `${label} training=${training}: ${k}`);
        }
      }
    }
  });
}

Deno.test("model seam: the registry resolves config names and rejects unknown or taken ones", () => {
  const parts = modelParts(TINY);
  assert.equal(parts.backbone, BACKBONES.get("sgp"));
  assert.equal(parts.neck, NECKS.get("identity"));
  assert.equal(parts.head, HEADS.get("trident"));
  const bad = { ...TINY, backbone: "nope" } as StudentConfig;
  assert.throws(() => paramSpecs(bad, 6, 3), /unknown backbone "nope" \(registered: .*sgp/);
  assert.throws(() => modelParts({ ...TINY, neck: "x" } as StudentConfig), /unknown neck "x"/);
  assert.throws(
    () => modelParts({ ...TINY, head: 3 } as unknown as StudentConfig),
    /unknown head 3/,
  );
  assert.throws(() => registerBackbone("sgp", BACKBONES.get("sgp")!), /already registered/);
  assert.throws(() => registerBackbone("a b", BACKBONES.get("sgp")!), /not a plain name/);
});

// A one-layer backbone: one masked kernel-3 conv with ReLU at level 0, then max-pool per level.
registerBackbone("test-conv1", {
  description: "test: one conv, max-pool pyramid",
  specs: (cfg, inDim) => [
    {
      name: "conv1.w",
      shape: [3 * inDim, cfg.dim],
      init: "uniform",
      fanIn: 3 * inDim,
      decay: true,
    },
    { name: "conv1.b", shape: [cfg.dim], init: "const", value: 0, decay: false },
  ],
  forward: (P, cfg, input) => {
    let x = tf.mul(tf.relu(conv1d(input.x, P("conv1.w"), P("conv1.b"))), input.masks[0]);
    const feats = [x];
    for (let l = 1; l < cfg.levels; l++) {
      x = tf.mul(maxPool3s2(x), input.masks[l]);
      feats.push(x);
    }
    return feats;
  },
});

Deno.test("model seam: a registered backbone swaps in and trains through the unchanged stage", async () => {
  await initBackend("wasm");
  const cfg = {
    ...TINY,
    backbone: "test-conv1",
    batch: 4,
    epochs: 1,
    ema: false,
    switchEpoch: 1,
  } as StudentConfig;
  const specs = paramSpecs(cfg, 8, 3);
  assert.deepEqual(specs.slice(0, 2).map((p) => p.name), ["conv1.w", "conv1.b"]);
  assert.ok(!specs.some((p) => /^(embed|stem|branch)\./.test(p.name)));
  assert.deepEqual(
    specs.slice(2).map((p) => p.name),
    paramSpecs(TINY, 8, 3).filter((p) => /^(neck|head)\./.test(p.name)).map((p) => p.name),
  );
  // A backbone whose levels have the wrong shape is named in the error.
  const wrong = { ...TINY, backbone: "test-conv1", dim: 8 } as StudentConfig;
  const wrongSpecs = paramSpecs(wrong, 6, 3).map((p) =>
    p.name === "conv1.w"
      ? { ...p, shape: [18, 4] }
      : p.name === "conv1.b"
      ? { ...p, shape: [4] }
      : p
  );
  const wv = initValues(wrongSpecs, new Rng(1));
  const wp = Object.fromEntries(
    wrongSpecs.map((p) => [p.name, tf.tensor(wv.get(p.name)!, p.shape)]),
  );
  assert.throws(
    () =>
      tf.tidy(() => {
        forward(
          wp,
          wrong,
          { x: new Float32Array(2 * 64 * 6), lens: [64, 30], t0: 64, dim: 6 },
          false,
        );
      }),
    /backbone level 0 has shape \[2,64,4\], want \[2,64,8\]/,
  );
  tf.dispose(Object.values(wp));

  const ds = tinyDataset({ nTrain: 4, nTest: 2, rows: 64, dim: 8, k: 3, seed: 21 });
  const labels = jitteredLabels(ds, 3);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "seam-"));
  try {
    const r = await trainStudent(ds, labels, { config: cfg, seed: 1, outDir: dir });
    assert.equal(r.info?.steps, 1);
    assert.equal((r.config as StudentConfig & { backbone?: string }).backbone, "test-conv1");
    for (const d of r.test) assert.ok(Number.isFinite(d.score) && d.segment[0] <= d.segment[1]);
    // The checkpoint holds the custom backbone's weights, moved by the one AdamW step.
    const { params, meta } = await loadStudent(path.join(dir, CHECKPOINT_FILE), "raw");
    try {
      assert.equal((meta.config as StudentConfig & { backbone?: string }).backbone, "test-conv1");
      assert.deepEqual(Object.keys(params), specs.map((p) => p.name));
      assert.ok(params["conv1.w"].dataSync().every(Number.isFinite));
      const b = params["conv1.b"].dataSync();
      assert.ok(b.some((v) => v !== 0), "conv1.b moved from its zero init");
    } finally {
      tf.dispose(Object.values(params));
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
