/**
 * saeflow: sparse autoencoders for language-model interpretability, on WebGPU.
 *
 * - `gpu`: the device, `Tensor`, and WGSL kernels with plain-TS references.
 * - `sae`: the `SAE` class (every SAELens architecture, SAELens files, pretrained releases),
 *   configs, and the training engine (`TrainingSAE`, `SAETrainer`).
 * - `model`: transformers on WebGPU with TransformerLens hook points, `HookedSAETransformer`.
 * - `stages`, `pipeline`: the streaming stages (source → tokenize → hook → buffer → SAE step →
 *   checkpoint → log), `SAETrainingRunner`, `ActivationsStore` and the runner config.
 * - `hub`, `io`, `config`, `logging`: Hugging Face interop, file formats, config machinery with
 *   SAELens's snake_case keys, and progress / JSONL / W&B logging.
 *
 * @example
 * ```ts
 * import { getGpu, Tensor } from "./mod.ts";
 * await getGpu();
 * using x = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * const back = await x.toArray();
 * if (back[3] !== 4) throw new Error("round trip failed");
 * ```
 * @module
 */

export * from "./gpu/mod.ts";
export * from "./io/mod.ts";
export * from "./config/mod.ts";
export * from "./hub/mod.ts";
export * from "./model/mod.ts";
export * from "./sae/mod.ts";
export * from "./sae/training/mod.ts";
export * from "./gpu/hooks.ts";
export * from "./util/errors.ts";
export * from "./util/version.ts";
export * from "./util/rng.ts";
export * from "./logging/mod.ts";
export * from "./stages/mod.ts";
export * from "./pipeline/mod.ts";
export * from "./synthetic/mod.ts";
export * from "./evals/mod.ts";

// Names that two modules export: the GPU op and the hook type of the GPU forward win; the
// reference forward's versions keep distinct names here.
export { logSoftmax, numel } from "./gpu/mod.ts";
export { type HookFn } from "./gpu/hooks.ts";
export {
  type HookFn as ReferenceHookFn,
  type HostTensor,
  logSoftmax as logSoftmaxRef,
} from "./model/mod.ts";
