/**
 * Peak memory of the running benchmark process, for the benches' tables.
 *
 * @module
 */

/** Peak resident set of this process in MB (Linux `VmHWM`), else the current RSS. */
export function peakRssMB(): number {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/);
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return Deno.memoryUsage().rss / 2 ** 20;
}
