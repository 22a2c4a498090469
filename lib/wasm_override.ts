/**
 * Kernels of the tfjs-wasm backend: replacing tfjs's own, reversibly (the one mechanism behind
 * `wasm_share.ts`, copy-free clones, and `wasm_slice.ts`, copy-only slices), and registering the
 * toolkit's new ones (`blas_conv.ts`, `wasm_maxpool.ts`).
 *
 * @module
 */
import { tf } from "../deps.ts";

/**
 * A switch for the wasm backend's kernels `names`: `on(true)` re-registers each as
 * `wrap(name, original)`, `on(false)` puts the originals back (for benchmarks and tests that
 * compare the two). Idempotent. Where this tfjs-wasm lacks one of the kernels, nothing is
 * replaced. The wasm backend must be registered.
 */
export function wasmKernelSwitch(
  names: readonly string[],
  wrap: (name: string, original: tf.KernelFunc) => tf.KernelFunc,
): (on?: boolean) => void {
  /** The original kernels, while the replacements are registered. */
  let originals: tf.KernelConfig[] | null = null;
  return (on = true) => {
    if (on === (originals !== null)) return;
    if (!on) {
      for (const cfg of originals!) {
        tf.unregisterKernel(cfg.kernelName, "wasm");
        tf.registerKernel(cfg);
      }
      originals = null;
      return;
    }
    const found = names.map((name) => tf.getKernel(name, "wasm"));
    if (found.some((c) => !c)) return;
    originals = found as tf.KernelConfig[];
    for (const cfg of originals) {
      tf.unregisterKernel(cfg.kernelName, "wasm");
      tf.registerKernel({ ...cfg, kernelFunc: wrap(cfg.kernelName, cfg.kernelFunc) });
    }
  };
}

/**
 * A function that registers `kernels` (kernel name -> kernel function) on the wasm backend at
 * its first call and does nothing after: new kernels are registered when first used, so that
 * importing their module registers nothing.
 */
export function wasmKernelRegistrar(
  kernels: Record<string, (args: never) => unknown>,
): () => void {
  let registered = false;
  return () => {
    if (registered) return;
    for (const [kernelName, f] of Object.entries(kernels)) {
      tf.registerKernel({
        kernelName,
        backendName: "wasm",
        kernelFunc: f as unknown as tf.KernelFunc,
      });
    }
    registered = true;
  };
}
