/**
 * The run's `state.json`: which stages finished, with which settings, and what they recorded.
 *
 * Each stage is keyed by a fingerprint of the settings its output depends on (its own and every
 * earlier stage's). A stage counts as finished only with the same key as now, so `--resume`
 * after changing, say, the filter redoes selection and training but keeps the generator.
 *
 * @module
 */
import { atomicWriteJson, exists, readJson } from "../../lib/io.ts";
import type { FuSTALConfig, RunSettings } from "./config.ts";

/** The stages recorded in `state.json`. */
export type StageName = "data" | "generation" | "selection" | "training";

/** What `state.json` holds for one stage. */
export interface StageState {
  /** Whether the stage finished. */
  done: boolean;
  /** Seconds it took. */
  seconds: number;
  /** The settings the stage's output depends on (its own and every earlier stage's). */
  key?: string;
  /** What the stage recorded for later runs (curves, plugin info, snapshots). */
  extra?: Record<string, unknown>;
}

/** Cumulative settings fingerprints of the stages. */
export function stageKeys(
  config: FuSTALConfig,
  settings: Pick<RunSettings, "seed" | "preset" | "names">,
): Record<StageName, string> {
  const { seed, preset, names } = settings;
  const data = JSON.stringify({
    root: config.root,
    layout: config.layout,
    generatorRoot: config.generatorRoot,
    studentRoot: config.studentRoot,
    synth: config.root ? undefined : config.synth,
    seed,
  });
  const generation = JSON.stringify({
    data,
    preset,
    generator: names.generator,
    crossVideo: config.crossVideo ?? true,
    options: config.generatorOptions ?? {},
    reuse: config.reuseGenerationFrom,
  });
  const selection = JSON.stringify({
    generation,
    filter: names.filter,
    options: config.filterOptions ?? {},
  });
  const training = JSON.stringify({
    selection,
    student: names.student,
    ema: config.ema ?? true,
    options: config.studentOptions ?? {},
  });
  return { data, generation, selection, training };
}

/** The stages recorded in the `state.json` at `file`. */
export async function readStageStates(file: string): Promise<Record<string, StageState>> {
  return (await readJson(file)) as Record<string, StageState>;
}

/** The finished-stage bookkeeping of one run, saved to its `state.json` on every change. */
export class RunState {
  private constructor(
    private readonly file: string,
    private readonly keys: Record<StageName, string>,
    private readonly resume: boolean,
    private readonly stages: Record<string, StageState>,
  ) {}

  /**
   * The state of the run folder `out`: read from `file` with `resume` (logging the finished
   * stages), empty otherwise (noting an earlier run, whose stages are recomputed).
   */
  static async open(
    file: string,
    keys: Record<StageName, string>,
    resume: boolean,
    out: string,
    log: (line: string) => void,
  ): Promise<RunState> {
    let stages: Record<string, StageState> = {};
    if (resume && await exists(file)) {
      stages = await readStageStates(file);
      log(
        `resume: finished stages ${
          Object.keys(stages).filter((k) => stages[k].done).join(", ") || "none"
        }`,
      );
    } else if (!resume && await exists(file)) {
      log(
        `note: ${out} holds an earlier run; its stages are recomputed (use --resume to continue)`,
      );
    }
    return new RunState(file, keys, resume, stages);
  }

  /** Whether stage `k` finished (on resume) with the same settings as now. */
  isDone(k: StageName): boolean {
    return Boolean(this.resume && this.stages[k]?.done && this.stages[k]?.key === this.keys[k]);
  }

  /** What stage `k` recorded when it finished. */
  extra(k: StageName): Record<string, unknown> | undefined {
    return this.stages[k]?.extra;
  }

  /**
   * Marks stage `k` started (not done) and saves the state. True when the unfinished stage it
   * replaces was started with the same settings: only then may a plugin continue from its own
   * checkpoints.
   */
  async start(k: "generation" | "training"): Promise<boolean> {
    const same = Boolean(this.resume && this.stages[k] && this.stages[k].key === this.keys[k]);
    this.stages[k] = { done: false, seconds: 0, key: this.keys[k] };
    await this.save();
    return same;
  }

  /** Records stage `k` as finished (with the settings it ran with) and saves the state. */
  finish(k: StageName, started: number, extra?: Record<string, unknown>): Promise<void> {
    this.stages[k] = {
      done: true,
      seconds: (performance.now() - started) / 1000,
      key: this.keys[k],
      extra,
    };
    return this.save();
  }

  /** Forgets stages whose input changed (they must run again); saved with the next change. */
  invalidate(...ks: StageName[]): void {
    for (const k of ks) delete this.stages[k];
  }

  private save(): Promise<void> {
    return atomicWriteJson(this.file, this.stages, true);
  }
}
