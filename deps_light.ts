/**
 * The pinned third-party dependencies that do not load tfjs, for modules that must stay light
 * (the dataset readers, reached by the `./datasets` entry). `deps.ts` re-exports them, so it
 * still lists every dependency.
 *
 * @module
 */
export * as fflate from "npm:fflate@0.8.2";
