/**
 * The package version (the `version` of `deno.json`; a test keeps the two equal), shown in
 * reports and written into result files.
 *
 * @module
 */

/** The package version. */
export const VERSION = "0.1.0";
