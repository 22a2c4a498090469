/**
 * A memory cache of whole-video features for the trainers, which read every training video
 * once per pass: videos are kept in memory, in the order first loaded, while their total size
 * fits a byte budget; the rest are read from the dataset again on every use.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import type { Dataset, VideoFeatures, VideoMeta } from "./types.ts";

/** Loads features of videos, keeping them in memory while the total fits `budget` bytes. */
export class FeatureCache {
  #ds: Dataset;
  #mem = new Map<string, VideoFeatures>();
  #used = 0;
  #budget: number;
  /** A cache over `ds` keeping up to `budget` bytes of features in memory. */
  constructor(ds: Dataset, budget: number) {
    this.#ds = ds;
    this.#budget = budget;
  }
  /**
   * Features of a video, by id or metadata. A video whose feature dim differs from the
   * dataset's, or that has no feature rows, is an InputError naming the dataset and the video.
   */
  async get(video: string | VideoMeta): Promise<VideoFeatures> {
    const id = typeof video === "string" ? video : video.id;
    const hit = this.#mem.get(id);
    if (hit) return hit;
    const f = await this.#ds.load(id);
    if (f.dim !== this.#ds.featureDim) {
      throw new InputError(
        `${this.#ds.root}: video ${id} has feature dim ${f.dim}, expected ${this.#ds.featureDim}`,
      );
    }
    if (f.length < 1) throw new InputError(`${this.#ds.root}: video ${id} has no features`);
    if (this.#used + f.data.byteLength <= this.#budget) {
      this.#mem.set(id, f);
      this.#used += f.data.byteLength;
    }
    return f;
  }
}
