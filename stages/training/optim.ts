/**
 * The student's optimiser (FuSTAL `Student-Training/libs/utils/train_utils.py`,
 * `make_optimizer` / `train_one_epoch` / `ModelEma`): AdamW with decoupled weight decay on the
 * parameters marked for it, a linear learning-rate warm-up, clipping of the global gradient L2
 * norm (PyTorch `clip_grad_norm_`), and the EMA copy of the weights updated after every step.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import type { StudentConfig } from "./presets.ts";
import type { TrainState } from "./state.ts";

/** Learning rate of optimiser step `i` (linear warm-up from 0 over `w` steps, then constant). */
export function learningRate(i: number, base: number, w: number): number {
  if (w <= 1 || i >= w) return base;
  return base * i / (w - 1);
}

/**
 * The factor that brings the global L2 norm of `grads` down to `clipNorm` (1 when it is
 * already within; PyTorch `clip_grad_norm_`).
 */
export async function clipScale(grads: tf.Tensor[], clipNorm: number): Promise<number> {
  const sq = tf.tidy(() => tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
  const norm = Math.sqrt((await sq.data())[0]);
  sq.dispose();
  const coef = clipNorm / (norm + 1e-6);
  return coef < 1 ? coef : 1;
}

/**
 * One AdamW step of `s` at learning rate `lr` with the clipped `grads` (keyed as
 * `tf.variableGrads` names them: `<scope>/<parameter>`); `decay` says which parameters take
 * weight decay. Uses `s.step` (steps already taken) for the bias corrections; does not count
 * the step.
 */
export async function applyAdamW(
  s: Pick<TrainState, "specs" | "vars" | "m" | "v" | "step">,
  grads: tf.NamedTensorMap,
  decay: Map<string, boolean>,
  cfg: StudentConfig,
  lr: number,
): Promise<void> {
  const byName = new Map<string, tf.Tensor>();
  const prefixLen = (name: string) => name.indexOf("/") + 1;
  for (const [k, g] of Object.entries(grads)) byName.set(k.slice(prefixLen(k)), g);
  const scale = await clipScale([...byName.values()], cfg.clipNorm);
  const t = s.step + 1;
  const bc1 = 1 - cfg.beta1 ** t;
  const bc2 = 1 - cfg.beta2 ** t;
  for (const p of s.specs) {
    const g0 = byName.get(p.name);
    if (!g0) continue;
    const [m, v, np] = tf.tidy(() => {
      const g = scale === 1 ? g0 : tf.mul(g0, scale);
      const m = tf.add(tf.mul(s.m[p.name], cfg.beta1), tf.mul(g, 1 - cfg.beta1));
      const v = tf.add(tf.mul(s.v[p.name], cfg.beta2), tf.mul(tf.square(g), 1 - cfg.beta2));
      let w: tf.Tensor = s.vars[p.name];
      if (decay.get(p.name) && cfg.weightDecay > 0) w = tf.mul(w, 1 - lr * cfg.weightDecay);
      const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), cfg.adamEps);
      const np = tf.sub(w, tf.mul(tf.div(m, denom), lr / bc1));
      return [m, v, np];
    });
    s.m[p.name].dispose();
    s.v[p.name].dispose();
    s.m[p.name] = m;
    s.v[p.name] = v;
    s.vars[p.name].assign(np);
    np.dispose();
  }
}

/** Moves the EMA copy of `s` (when there is one) towards the weights: `ema = d ema + (1-d) w`. */
export function updateEma(s: Pick<TrainState, "specs" | "vars" | "ema">, d: number): void {
  if (!s.ema) return;
  for (const p of s.specs) {
    const old = s.ema[p.name];
    s.ema[p.name] = tf.keep(tf.tidy(() => tf.add(tf.mul(old, d), tf.mul(s.vars[p.name], 1 - d))));
    old.dispose();
  }
}
