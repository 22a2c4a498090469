/**
 * Host-to-GPU uploads for tfjs-webgpu through `GPUQueue.writeBuffer`.
 *
 * tfjs-webgpu 4.22 uploads a tensor's values by writing them into a buffer created with
 * `mappedAtCreation` (`getMappedRange()`, `set`, `unmap`), then copying it into the tensor's
 * buffer. Deno's WebGPU runs that path at 20-23 MB/s on an NVIDIA H200, against 3.2-3.9 GB/s
 * for `queue.writeBuffer` of the same 200 MB (bench/BENCH.md, "GPU"). A training step uploads
 * its features every step (98 MB for the published generator batch, 151 MB for the published
 * student batch), so the slow path took 11-14 s of a step whose kernels ran in 0.7-1.4 s.
 *
 * {@linkcode useQueueUploads} replaces the backend's `uploadToGPU` with one that writes the
 * values into a staging buffer with `writeBuffer` and records the same buffer-to-buffer copy
 * that tfjs records. The copy keeps tfjs's ordering: it runs in the command stream, after every
 * command already recorded, so a buffer that tfjs reuses from its pool is never overwritten
 * before the commands that read its old contents. Tensors of other dtypes (complex, string)
 * and tensors with no values on the host keep tfjs's own path.
 *
 * @module
 */

/** The parts of tfjs-webgpu's backend that the upload touches (tfjs-backend-webgpu 4.22). */
interface WebgpuBackendLike {
  tensorMap: { get(id: object): TensorDataLike };
  bufferManager: {
    acquireBuffer(size: number, usage: number, mapped?: boolean, reuse?: boolean): GPUBuffer;
  };
  queue: GPUQueue;
  commandEncoder: GPUCommandEncoder;
  stagingPendingDisposal: GPUBuffer[];
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  uploadToGPU(dataId: object): void;
}

interface TensorDataLike {
  dtype: string;
  shape: number[];
  values: ArrayLike<number> | null;
  resource: unknown;
}

const PATCHED = Symbol.for("fustal.webgpuQueueUploads");

/**
 * Makes the given tfjs-webgpu backend (and every backend of its class) upload tensor values
 * with `GPUQueue.writeBuffer`. Idempotent. Returns false when the backend does not have the
 * members this relies on (another tfjs version), in which case nothing is changed.
 */
export function useQueueUploads(backend: object): boolean {
  const proto = Object.getPrototypeOf(backend) as WebgpuBackendLike & { [PATCHED]?: true };
  if (proto[PATCHED]) return true;
  const b = backend as Partial<WebgpuBackendLike>;
  if (
    typeof proto.uploadToGPU !== "function" || !b.tensorMap || !b.bufferManager || !b.queue ||
    typeof proto.ensureCommandEncoderReady !== "function" ||
    typeof proto.endComputePassEncoder !== "function" || !Array.isArray(b.stagingPendingDisposal)
  ) {
    return false;
  }
  const tfjsUpload = proto.uploadToGPU;
  proto.uploadToGPU = function (this: WebgpuBackendLike, dataId: object): void {
    const td = this.tensorMap.get(dataId);
    const values = td.values;
    const float = td.dtype === "float32";
    if (
      td.resource != null || values == null || values.length === 0 ||
      !(float || td.dtype === "int32" || td.dtype === "bool")
    ) {
      return tfjsUpload.call(this, dataId);
    }
    // Four bytes per element on the GPU for all three dtypes (bool is stored as i32).
    const src = float
      ? (values instanceof Float32Array ? values : Float32Array.from(values))
      : (values instanceof Int32Array ? values : Int32Array.from(values));
    const size = src.byteLength;
    const buffer = this.bufferManager.acquireBuffer(
      size,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      false,
    );
    // Not from the pool (reuse false): tfjs destroys the staging buffers after the submit.
    const staging = this.bufferManager.acquireBuffer(
      size,
      GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      false,
      false,
    );
    this.queue.writeBuffer(staging, 0, src.buffer, src.byteOffset, size);
    this.ensureCommandEncoderReady();
    this.endComputePassEncoder();
    this.commandEncoder.copyBufferToBuffer(staging, 0, buffer, 0, size);
    this.stagingPendingDisposal.push(staging);
    td.values = null;
    td.resource = buffer;
  };
  proto[PATCHED] = true;
  return true;
}
