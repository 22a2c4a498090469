/**
 * Copy-free `Identity` and same-type `Cast` on tfjs-wasm.
 *
 * tfjs-wasm's `Identity` and `Cast` kernels allocate a new tensor and copy every byte, even when
 * the type does not change. The engine calls them far more often than a model does: `clone`
 * (used when a kernel's gradient saves its inputs or outputs, by `customGrad` and by `keep`) is an
 * `Identity`, and the gradient of `mul` casts both inputs to float32. In a training step of the
 * student these were the largest group of kernel calls (1,934 `Identity` and 600 `Cast` of the
 * 6,838 calls of one 576-row step, each a full copy of an activation), and in the published-size
 * generator step twelve copies of 98 MB each.
 *
 * tfjs tensors are immutable and the wasm backend counts references per buffer (its own
 * `Reshape` returns the input's buffer with the count raised), so both kernels can do the same:
 * share the buffer. Values are therefore unchanged, bit for bit; the copies' time and memory
 * are gone. The cpu and WebGL backends of tfjs implement `Identity` this way too. Nothing in this
 * toolkit writes into a tensor's buffer after it exists (the BLAS kernels of `lib/blas.ts` write
 * only into the outputs they allocate), which is what makes sharing safe.
 *
 * @module
 */
import type { tf } from "../deps.ts";
import { wasmKernelSwitch } from "./wasm_override.ts";

interface RefCounting {
  incRef(dataId: unknown): void;
}

type Args = {
  inputs: { x: tf.TensorInfo };
  backend: RefCounting;
  attrs?: { dtype?: string };
};

function shared(x: tf.TensorInfo, backend: RefCounting): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const shareSwitch = wasmKernelSwitch(["Identity", "Cast"], (name, orig) =>
  ((args: Args) => {
    const { x } = args.inputs;
    const sameType = name === "Identity" || args.attrs?.dtype === x.dtype;
    if (!sameType || x.dtype === "string") {
      return orig(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    return shared(x, args.backend);
  }) as unknown as tf.KernelFunc);

/**
 * Re-registers the wasm backend's `Identity` and `Cast` kernels so that a copy to the same type
 * shares the input's buffer instead of copying it (casts to another type, and strings, still
 * go to the original kernels); `enable = false` puts the original kernels back (for benchmarks
 * that measure the copies). The wasm backend must be registered. Idempotent.
 */
export function shareWasmCopies(enable = true): void {
  shareSwitch(enable);
}
