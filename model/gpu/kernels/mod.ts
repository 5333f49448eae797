/**
 * WGSL kernels of the language model's GPU forward (fused linear epilogues, norms with TL hook
 * values, attention, rotary, embedding, per-token loss), each with a plain-TS reference.
 * @module
 */

export {
  disposeLinear,
  type HostLinear,
  linear,
  type LinearOptions,
  linearRef,
  type LinearWeight,
  prepareLinear,
} from "./linear.ts";
export { norm, type NormOptions, normRef, type NormResult } from "./norm.ts";
export { type AttnDims, attnFused, attnScores, attnZ, softmaxMasked } from "./attention.ts";
export { rotary } from "./rotary.ts";
export {
  checkTokenRange,
  disposeEmbed,
  embedGather,
  embedRef,
  type EmbedTable,
  posBroadcast,
  prepareEmbed,
  tokenRangeFlags,
  tokenRangeFlagsRef,
} from "./embed.ts";
export {
  applyAct,
  gatedCombine,
  headResult,
  type InPlaceOp,
  mapInPlace,
  sumHeads,
} from "./pointwise.ts";
export { lmLossPerToken } from "./loss.ts";
