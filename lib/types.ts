/**
 * The plain records that stages hand to each other. Segments are in seconds, as in the JSON
 * files of the official code and of ActivityNet, so any stage can be run alone from files.
 *
 * @module
 */

/** A temporal segment `[start, end]` in seconds. */
export type Segment = [number, number];

/** One detection or proposal: the unit of every result file. */
export interface Detection {
  /** Video id as in the annotation file (e.g. `video_test_0000004`, `v_abc123`). */
  videoId: string;
  /** Class name. */
  label: string;
  /** Confidence (proposal scores may be outside [0, 1]). */
  score: number;
  /** `[start, end]` in seconds. */
  segment: Segment;
}

/** One ground-truth action instance. */
export interface GroundTruthInstance {
  /** Video id. */
  videoId: string;
  /** Class name. */
  label: string;
  /** `[start, end]` in seconds. */
  segment: Segment;
}

/** Ground truth of one evaluated subset. */
export interface GroundTruth {
  /** Every video of the subset, including videos without annotations. */
  videos: string[];
  /** Every instance of those videos. */
  instances: GroundTruthInstance[];
}
