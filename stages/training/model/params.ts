/**
 * Parameter specs shared by every part of the student (backbone, neck, head): the spec record,
 * small builders for the recurring LayerNorm / bias / weight entries, and the by-name parameter
 * lookup each part's forward uses.
 *
 * @module
 */
import type { tf } from "../../../deps.ts";

/** A parameter's shape, initialisation and whether AdamW decays it. */
export interface ParamSpec {
  /** Unique name, the key of the parameter record and of checkpoints (`stem.0.mlp1.w`). */
  name: string;
  /** Tensor shape (conv weights are `[3 * Cin, Cout]`, tap-major rows). */
  shape: number[];
  /** `uniform`: U(+-1/sqrt(fanIn)); `normal`: N(0, std^2); `const`: filled with `value`. */
  init: "uniform" | "normal" | "const";
  /** Fan-in of a `uniform` init. */
  fanIn?: number;
  /** Standard deviation of a `normal` init (0: all zeros, no draw). */
  std?: number;
  /** Fill value of a `const` init. */
  value?: number;
  /** Weight decay applies (convolution weights only, `make_optimizer` in `train_utils.py`). */
  decay: boolean;
}

/** Looks a parameter up by name; throws `missing parameter NAME` when it is absent. */
export type ParamGetter = (name: string) => tf.Tensor;

/** A {@linkcode ParamGetter} over a flat `name -> tensor` record. */
export function paramGetter(params: Record<string, tf.Tensor>): ParamGetter {
  return (n) => {
    const t = params[n];
    if (!t) throw new Error(`missing parameter ${n}`);
    return t;
  };
}

/** Appends specs to `out` in call order (the order fixes checkpoints and the seeded init). */
export interface SpecBuilder {
  /** LayerNorm gain `${p}.g` (1) and bias `${p}.b` (0) of width `n`; not decayed. */
  ln(p: string, n: number): void;
  /** A constant, non-decayed vector `name` of length `n` filled with `value`. */
  bias(name: string, n: number, value?: number): void;
  /** A decayed weight of `shape` with U(+-1/sqrt(fanIn)) init. */
  uniform(name: string, shape: number[], fanIn: number): void;
}

/** A {@linkcode SpecBuilder} that pushes onto `out`. */
export function specBuilder(out: ParamSpec[]): SpecBuilder {
  return {
    ln(p, n) {
      out.push({ name: `${p}.g`, shape: [n], init: "const", value: 1, decay: false });
      out.push({ name: `${p}.b`, shape: [n], init: "const", value: 0, decay: false });
    },
    bias(name, n, value = 0) {
      out.push({ name, shape: [n], init: "const", value, decay: false });
    },
    uniform(name, shape, fanIn) {
      out.push({ name, shape, init: "uniform", fanIn, decay: true });
    },
  };
}
