/**
 * Class fusion: the student's detections restricted to the classes that an external video-level
 * classifier finds in each test video.
 *
 * The student's own code has this hook: TriDet and ActionFormer fuse "external classification
 * scores" with their detections (`test_cfg.ext_score_file`, `libs/utils/postprocessing.py`
 * `postprocess_results`, present in fqhank/FuSTAL `Student-Training/`), because a localizer
 * trained on segments recognises classes worse than a classifier trained on whole videos. FuSTAL's
 * THUMOS'14 config leaves it unset. In weakly-supervised localization the pipeline already holds
 * such a classifier: the generator, trained on video-level labels only, whose test detections
 * name the classes it finds in each video. `generator` fusion keeps a student detection iff the
 * generator found its class in that video; scores are unchanged (scaling them by the generator's
 * score ranked worse, `bench/BENCH-training.md`). A video in which the generator found nothing
 * keeps all its detections (no evidence either way). Fusion trusts the generator's classes: with
 * a generator that has barely trained (a few iterations) it can remove every right detection,
 * which is why every run reports both figures.
 *
 * @module
 */
import { InputError } from "../lib/errors.ts";
import type { PresetName } from "../lib/presets.ts";
import type { Detection } from "../lib/types.ts";

/** `none`: the student's detections as they are; `generator`: restricted to the generator's classes. */
export type ClassFusion = "none" | "generator";

/** Every class-fusion mode. */
export const CLASS_FUSIONS: readonly ClassFusion[] = ["none", "generator"];

/**
 * The fusion of each preset: `paper` as published (none); `default` and `reference` use the
 * generator's classes. Measured on the synthetic default (`bench/BENCH-training.md`): the
 * `reference` student's raw weights at the end of its first stage score 27.5 on their own classes
 * and 33.9 with the generator's (generator 32.4; seed 1: 27.8 and 33.2, generator 33.5; seed 2:
 * 23.7 and 31.0, generator 30.2); the `default` student 32.3-34.6 and 38.0-40.3 (generator about
 * 36).
 */
export const PRESET_CLASS_FUSION: Readonly<Record<PresetName, ClassFusion>> = {
  default: "generator",
  reference: "generator",
  paper: "none",
};

/** `name` as a class-fusion mode, or an InputError naming `where` and the choices. */
export function classFusionName(name: unknown, where = "--class-fusion"): ClassFusion {
  if (typeof name === "string" && (CLASS_FUSIONS as readonly string[]).includes(name)) {
    return name as ClassFusion;
  }
  throw new InputError(
    `${where}: unknown class fusion ${JSON.stringify(name)} (use ${CLASS_FUSIONS.join(", ")})`,
  );
}

/** The classes each video's detections name (the video-level classes of a classifier's output). */
export function videoClasses(dets: readonly Detection[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const d of dets) {
    const s = out.get(d.videoId);
    if (s) s.add(d.label);
    else out.set(d.videoId, new Set([d.label]));
  }
  return out;
}

/**
 * `dets` restricted to the classes `classes` lists for their video; videos it does not list
 * keep every detection. Order is preserved.
 */
export function keepVideoClasses(
  dets: readonly Detection[],
  classes: ReadonlyMap<string, ReadonlySet<string>>,
): Detection[] {
  return dets.filter((d) => {
    const s = classes.get(d.videoId);
    return !s || s.has(d.label);
  });
}
