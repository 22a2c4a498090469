/**
 * One-file student checkpoints in the shared tensor-file container (lib/tensor_file.ts), magic
 * `FSTLCKP1`, written atomically. Groups: `model` (student weights), `ema`, `adam.m`, `adam.v`.
 *
 * @module
 */
import {
  decodeTensorFile,
  encodeTensorFile,
  loadTensorFile,
  saveTensorFile,
  type TensorFileKind,
  type TensorGroups,
} from "../../lib/tensor_file.ts";

export type { HostTensor, TensorGroups } from "../../lib/tensor_file.ts";

/** The first 8 bytes of a student checkpoint file. */
export const CHECKPOINT_MAGIC = "FSTLCKP1";

/** The student checkpoint kind of tensor file. */
const STUDENT_CHECKPOINT: TensorFileKind = {
  magic: CHECKPOINT_MAGIC,
  name: "student checkpoint",
  finiteOnly: true,
};

/** Encodes a checkpoint to bytes. */
export function encodeCheckpoint(meta: unknown, groups: TensorGroups): Uint8Array {
  return encodeTensorFile(meta, groups, STUDENT_CHECKPOINT);
}

/** Decodes checkpoint bytes; `file` names errors. */
export function decodeCheckpoint(
  bytes: Uint8Array,
  file: string,
): { meta: unknown; groups: TensorGroups } {
  return decodeTensorFile(bytes, file, STUDENT_CHECKPOINT);
}

/** Writes a checkpoint atomically. */
export function saveCheckpoint(file: string, meta: unknown, groups: TensorGroups): Promise<void> {
  return saveTensorFile(file, meta, groups, STUDENT_CHECKPOINT);
}

/** Reads a checkpoint (one-line errors naming the file). */
export function loadCheckpoint(file: string): Promise<{ meta: unknown; groups: TensorGroups }> {
  return loadTensorFile(file, STUDENT_CHECKPOINT);
}
