/**
 * Selection of the value of a given rank in a typed array, in place, without sorting.
 *
 * @module
 */

/**
 * The value of rank `r` (0 = smallest) among `a[0 .. n)`, found in place by quickselect
 * (Hoare partition around the median of three; `a` is reordered so that the r values before
 * index r are the smallest). Expected O(n), against O(n log n) for a sort: the generator's
 * mining asks for 320 per step, the student's MIL top-k for one per (item, class).
 */
export function selectRank(a: Float64Array, n: number, r: number): number {
  let lo = 0, hi = n - 1;
  while (hi > lo) {
    const mid = (lo + hi) >> 1;
    // median of three as the pivot value
    let x = a[lo], y = a[mid];
    const z = a[hi];
    if (x > y) [x, y] = [y, x];
    if (y > z) y = z;
    const pivot = x > y ? x : y;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (r <= j) hi = j;
    else if (r >= i) lo = i;
    else return a[r];
  }
  return a[r];
}
