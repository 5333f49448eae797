/**
 * MLP with TL hook points: `mlp.hook_in` (SAELens's identity hook on the MLP input), then
 * standard `hook_pre` = x·W_in + b_in, `hook_post` = act(pre); or gated `hook_pre` = x·W_gate,
 * `hook_pre_linear` = x·W_in, `hook_post` = act(pre)·pre_linear + b_in. Output post·W_out + b_out.
 * @module
 */

import type { ModelConfig } from "../config.ts";
import type { HookRunner } from "../hooks/reference.ts";
import { activation, linear } from "./ops.ts";
import { getParam, type ParamMap } from "../params.ts";

/** Runs the MLP of layer `l` on its normalized input `[B, P, D]`; returns `[B, P, D]`. */
export function mlpForward(
  run: HookRunner,
  cfg: ModelConfig,
  params: ParamMap,
  l: number,
  input: Float32Array,
  B: number,
  P: number,
): Float32Array {
  const { dModel: D, dMlp: M } = cfg;
  const pre = `blocks.${l}.mlp.`;
  const p = (name: string, shape: number[]) => getParam(params, pre + name, shape).data;
  const rows = B * P;
  const act = activation(cfg.actFn);
  const x = run.fireData(pre + "hook_in", input, [B, P, D]);
  let post: Float32Array;
  if (cfg.gatedMlp) {
    const gate = run.fireData(pre + "hook_pre", linear(x, rows, D, p("W_gate", [D, M]), M), [
      B,
      P,
      M,
    ]);
    const up = run.fireData(pre + "hook_pre_linear", linear(x, rows, D, p("W_in", [D, M]), M), [
      B,
      P,
      M,
    ]);
    const bIn = p("b_in", [M]);
    post = new Float32Array(rows * M);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < M; j++) {
        const i = r * M + j;
        post[i] = act(gate[i]) * up[i] + bIn[j];
      }
    }
  } else {
    const preAct = run.fireData(
      pre + "hook_pre",
      linear(x, rows, D, p("W_in", [D, M]), M, p("b_in", [M])),
      [B, P, M],
    );
    post = new Float32Array(rows * M);
    for (let i = 0; i < post.length; i++) post[i] = act(preAct[i]);
  }
  post = run.fireData(pre + "hook_post", post, [B, P, M]);
  return linear(post, rows, M, p("W_out", [M, D]), D, p("b_out", [D]));
}
