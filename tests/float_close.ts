// Deep comparison of JSON-like values with float32-rounding tolerance on numbers.
import assert from "node:assert/strict";

/**
 * Asserts that `actual` and `expected` have the same structure and strings, and numbers equal up
 * to `rel` relative error (plus `abs` near zero). For results computed through different
 * products: OpenBLAS does not promise the same rounding for a row computed in another product
 * (another row count, thread split or tiling), and on some CPUs it differs (seen on an AMD EPYC:
 * the same crops relabelled in chunks or as one batch differed by ~1e-9 relative), so such
 * comparisons are exact on plain wasm only.
 */
export function assertDeepClose(
  actual: unknown,
  expected: unknown,
  msg: string,
  rel = 1e-5,
  abs = 1e-7,
  at = "",
): void {
  if (typeof actual === "number" && typeof expected === "number") {
    const tol = rel * Math.max(Math.abs(actual), Math.abs(expected)) + abs;
    assert.ok(
      Math.abs(actual - expected) <= tol,
      `${msg}: ${at || "value"} ${actual} vs ${expected}`,
    );
    return;
  }
  if (Array.isArray(actual) && Array.isArray(expected)) {
    assert.equal(actual.length, expected.length, `${msg}: length of ${at || "array"}`);
    actual.forEach((v, i) => assertDeepClose(v, expected[i], msg, rel, abs, `${at}[${i}]`));
    return;
  }
  if (actual && expected && typeof actual === "object" && typeof expected === "object") {
    const ka = Object.keys(actual).sort(), ke = Object.keys(expected).sort();
    assert.deepEqual(ka, ke, `${msg}: keys of ${at || "object"}`);
    for (const k of ka) {
      assertDeepClose(
        (actual as Record<string, unknown>)[k],
        (expected as Record<string, unknown>)[k],
        msg,
        rel,
        abs,
        `${at}.${k}`,
      );
    }
    return;
  }
  assert.deepEqual(actual, expected, `${msg}: ${at || "value"}`);
}
