/**
 * The dataset contract (records in `lib/dataset_types.ts`), re-exported for the adapters.
 *
 * @module
 */
export type * from "../lib/dataset_types.ts";
