/**
 * Clones that share their buffer on tfjs-wasm.
 *
 * tfjs-wasm's `Identity` kernel copies its input into a new buffer (tfjs-backend-wasm
 * `kernels/Identity.ts`), where tfjs-cpu's shares it and counts a reference (tfjs-backend-cpu
 * `kernels/Identity.ts`; tfjs-wasm's own `Reshape` shares the same way). The engine runs
 * `Identity` for every `tf.clone`, and clones each tensor a kernel saves for its gradient
 * (`saveTensorsForBackwardMode` in tfjs-core `engine.ts`), so on wasm the saved tensors of a
 * training step were a second copy of the activations they save: at the student's reference
 * size (2304 rows, batch 1) 287 MB of its 638 MB peak (`bench/BENCH.md`). Tensor data is never
 * written after its kernel returns, so sharing changes no value: only memory and the copy time.
 *
 * @module
 */
import { tf } from "../deps.ts";

/** The reference counting of tfjs-wasm's backend (`BackendWasm.incRef`). */
interface RefCounted {
  incRef(dataId: unknown): void;
}

let original: tf.KernelConfig | null = null;

/**
 * Re-registers tfjs-wasm's `Identity` kernel so that a clone shares its input's buffer (one more
 * reference) instead of copying it; `enable = false` puts the original kernel back. String
 * tensors, and a backend without reference counting, still go to the original. The wasm backend
 * must be loaded (its kernels registered) first; a no-op when it has no `Identity` kernel.
 * Idempotent.
 */
export function shareWasmIdentity(enable = true): void {
  const cur = tf.getKernel("Identity", "wasm");
  if (!cur) return;
  if (enable === (original !== null)) return;
  tf.unregisterKernel("Identity", "wasm");
  if (!enable) {
    tf.registerKernel(original!);
    original = null;
    return;
  }
  original = cur;
  const copy = cur.kernelFunc;
  tf.registerKernel({
    ...cur,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const be = args.backend as unknown as Partial<RefCounted>;
      if (x.dtype === "string" || typeof be.incRef !== "function") return copy(args);
      be.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}
