/**
 * What an architecture's author needs beside the unit interface: the dense and sparse training
 * drivers to plug into, the frame of the fused activation kernels and of the per-latent
 * finalisation, and the reference's float64 building blocks. The built-in folders of
 * `sae/architectures/` use exactly these; a user's architecture registered with
 * `registerSaeArchitecture` from outside the package uses them the same way.
 * @module
 */

export {
  CHUNK_ROWS,
  type DenseArchitecture,
  type DenseBatch,
  DenseStep,
  type DenseWindow,
  FIRST_ARCH_COLUMN,
  type WindowResidual,
} from "../training/train_sae_dense.ts";
export {
  type SparseArchitecture,
  sparseLossKeys,
  type SparseSelectionContext,
  SparseStep,
} from "../training/train_sae_sparse.ts";
export { type ArchStep, checkTarget, type StepContext } from "../training/train_sae_common.ts";
export {
  BACKWARD_PRELUDE,
  type BackwardUniforms,
  type DenseBackwardArgs,
  type DenseBackwardRefArgs,
  type DenseForwardArgs,
  type DenseForwardRefParams,
  type DenseKernels,
  FORWARD_INDEX,
  FORWARD_MAIN,
  FORWARD_PRELUDE,
  latentPass,
  recordDenseBackward,
  recordDenseForward,
  WGSL_TANH,
} from "../training/kernels/dense_acts.ts";
export {
  finalizeRows,
  type FinCtx,
  type FinRow,
  type LatentSpec,
  SC_AUXW,
  SC_NDEAD,
} from "../training/kernels/latent.ts";
export { gemm as trainingGemm, type GemmOptions } from "../training/kernels/_gemm.ts";
export { rowsView } from "../../gpu/kernel.ts";
export {
  type ArchTrainResult,
  type Grads64,
  param as refParam,
  type ParamsLike,
  type SaeParams,
  sumSquaredMean,
  type TrainCtx,
  zeroGrads,
} from "../reference/common.ts";
export { SaeReferenceError } from "../reference/errors.ts";
export {
  affineHidden64,
  decodeAffine64,
  decoderBackward,
  encodeAffine64,
  encoderBackward,
  processInput64,
} from "../reference/linear.ts";
export { normOut64, normOutBackward, type NormStateRef } from "../reference/normalization.ts";
export { copyParams, foldNorms, initTiedParams, kaimingUniform } from "../reference/weights.ts";
export type { RefRng } from "../../util/rng.ts";
