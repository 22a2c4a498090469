/**
 * Every third-party dependency of the toolkit, pinned, in one place.
 *
 * Specifiers are full `npm:name@version` strings (no import map) so that `mod.ts` imported by
 * URL from a folder without a `deno.json` still resolves them. Bun reaches the same
 * specifiers through the preload plugin in `bun-npm-plugin.ts`.
 *
 * tfjs: the `@tensorflow/tfjs` umbrella is imported (not `tfjs-core` alone) because it is the
 * lightest entry that registers the gradient functions (measured: `tfjs-core` alone has none,
 * and its `register_all_gradients.js` cannot be loaded as ESM). Backends other than `cpu`
 * are loaded on demand by `lib/backend.ts`. The umbrella depends on `core-js`, whose only
 * lifecycle script prints a banner; `deno.json` denies it (`allowScripts`) so Deno does not
 * print its "ignored build scripts" warning on a first run.
 *
 * @module
 */
// Inline `npm:` specifiers are the point of this file (see above), so the lint rule against
// them does not apply here.
// deno-lint-ignore-file no-import-prefix
export * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor as TfTensor } from "npm:@tensorflow/tfjs@4.22.0";
/** The tfjs tensor type, named for signatures of the public API. */
export type Tensor = TfTensor;
export { fflate } from "./deps_light.ts";

/** Loads and registers the tfjs WebAssembly backend (lazily: only runs that use it pay). */
export function loadWasmBackend(): Promise<unknown> {
  return import("npm:@tensorflow/tfjs-backend-wasm@4.22.0");
}

/** Loads and registers the tfjs WebGPU backend (lazily). */
export function loadWebgpuBackend(): Promise<unknown> {
  return import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");
}
