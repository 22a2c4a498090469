/**
 * `Slice` and `SplitV` on tfjs-wasm without copying the whole input.
 *
 * tfjs-wasm 4.22's `Slice` kernel starts with `backend.readSync(x)`, which copies the entire
 * input out of the wasm heap (`HEAPU8.slice`) before taking the slice, and then copies a strided
 * slice one innermost row at a time (a new `subarray` object per row). Its `SplitV` calls that
 * `Slice` once per piece, so splitting a tensor into n pieces copies the whole of it n times. In a
 * student training step at the `default` shapes the two splits of the heads' outputs
 * ([8, 1212, 128] into the pyramid levels and [8, 1212, 54] into classes and trident bins) took
 * about 40 ms of the ~270 ms step.
 *
 * The kernels here read the input where it lies in the heap and move only the slice: the dims
 * after the last one that is cut are copied whole, so each contiguous run is one `copyWithin` on
 * the heap (a memmove, no allocation), and there is one run per index of the dims before it (8
 * runs for a split of [8, 1212, 128] on axis 1). Values are bit-identical to the original kernels
 * (a copy either way). Strings go to the original kernels.
 *
 * @module
 */
import { tf } from "../deps.ts";
import { wasmKernelSwitch } from "./wasm_override.ts";

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/**
 * Copies the block `begin`/`size` of `x` into a new tensor. Contiguous runs are the cut dim
 * (the last one with `size < shape`) times the whole dims after it.
 */
function sliceHeap(
  x: tf.TensorInfo,
  begin: readonly number[],
  size: readonly number[],
  backend: HeapBackend,
): tf.TensorInfo {
  const out = backend.makeOutput([...size], x.dtype);
  const shape = x.shape;
  const rank = shape.length;
  // tfjs rejects slices of scalars before the kernel, so rank >= 1 here.
  const count = size.reduce((a, b) => a * b, 1);
  if (count === 0) return out;
  const bpe = BYTES[x.dtype];
  // Views after makeOutput: growing the heap replaces its buffer.
  const heap = backend.wasm.HEAPU8;
  const src0 = backend.dataIdMap.get(x.dataId).memoryOffset;
  const dst0 = backend.dataIdMap.get(out.dataId).memoryOffset;
  // k: the last cut dim; every dim after it is copied whole.
  let k = rank - 1;
  while (k > 0 && size[k] === shape[k] && begin[k] === 0) k--;
  const strides = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  const run = size[k] * strides[k] * bpe;
  let base = 0;
  for (let d = 0; d < rank; d++) base += begin[d] * strides[d];
  // Odometer over dims 0..k-1.
  const idx = new Array<number>(k).fill(0);
  let dst = dst0;
  for (;;) {
    let off = base;
    for (let d = 0; d < k; d++) off += idx[d] * strides[d];
    const src = src0 + off * bpe;
    heap.copyWithin(dst, src, src + run);
    dst += run;
    let d = k - 1;
    while (d >= 0 && ++idx[d] === size[d]) idx[d--] = 0;
    if (d < 0) break;
  }
  return out;
}

type SliceArgs = {
  inputs: { x: tf.TensorInfo };
  backend: HeapBackend;
  attrs: { begin: number | number[]; size: number | number[] };
};

type SplitArgs = {
  inputs: { x: tf.TensorInfo };
  backend: HeapBackend;
  attrs: { numOrSizeSplits: number | number[]; axis: number | number[] };
};

function slice(args: SliceArgs): tf.TensorInfo {
  const { x } = args.inputs;
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.TensorInfo as tf.Tensor,
    args.attrs.begin,
    args.attrs.size,
  );
  return sliceHeap(x, begin, size, args.backend);
}

function splitV(args: SplitArgs): tf.TensorInfo[] {
  const { x } = args.inputs;
  const axis = tf.util.parseAxisParam(args.attrs.axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as tf.TensorInfo as tf.Tensor,
    args.attrs.numOrSizeSplits,
    axis,
  );
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const piece = sliceHeap(x, begin, size, args.backend);
    begin[axis] += s;
    return piece;
  });
}

const FAST: Record<string, (args: never) => tf.TensorInfo | tf.TensorInfo[]> = {
  Slice: slice,
  SplitV: splitV,
};

const sliceSwitch = wasmKernelSwitch(
  Object.keys(FAST),
  (name, orig) =>
    ((args: { inputs: { x: tf.TensorInfo } }) =>
      args.inputs.x.dtype in BYTES
        ? FAST[name](args as never)
        : orig(args as unknown as Parameters<tf.KernelFunc>[0])) as unknown as tf.KernelFunc,
);

/**
 * Re-registers the wasm backend's `Slice` and `SplitV` kernels with the copy-only versions above
 * (strings still go to the original kernels); `enable = false` puts the originals back (for
 * benchmarks and tests that compare the two). The wasm backend must be registered. Idempotent.
 */
export function fastWasmSlices(enable = true): void {
  sliceSwitch(enable);
}
