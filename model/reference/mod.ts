/**
 * The plain-TypeScript reference of the language model: the forward pass of a TransformerLens
 * `HookedTransformer` with every hook point (`forward.ts`: embedding, blocks, ln_final,
 * unembedding; `attention.ts`, `mlp.ts`, `norms.ts` with their hooks), its numeric building
 * blocks (`ops.ts`: linear, erf, activations, softmax, rotary tables), TL's loss (`loss.ts`) and
 * host tensor helpers (`tensor.ts`). Float32 storage, float64 accumulation: the ground truth the
 * GPU forward (`model/gpu/`) and its kernels are checked against, hook by hook.
 * @module
 */

export { type ForwardOptions, type ForwardResult, referenceForward } from "./forward.ts";
export { attentionForward, type AttentionInputs } from "./attention.ts";
export { mlpForward } from "./mlp.ts";
export { applyNorm, type NormWeights } from "./norms.ts";
export {
  activation,
  add,
  applyRotary,
  erf,
  linear,
  type RotaryTables,
  rotaryTables,
  softmaxRows,
} from "./ops.ts";
export { lmCrossEntropyLoss, logSoftmax, type LossOptions } from "./loss.ts";
export { cloneTensor, expectShape, hostTensor, zeros } from "./tensor.ts";
