/**
 * Evaluating SAEs as SAELens's `sae_lens.evals` does (spec §6): {@link runEvals} with every
 * metric (CE loss and KL with and without the SAE and zero-ablated, explained variance, MSE,
 * cosine similarity, L2 norms and shrinkage, L0/L1, per-feature density and weight metrics)
 * computed on the GPU, its plain-TS reference {@link runEvalsRef}, the kernels behind it, and the
 * training-time evaluator (SAELens's `LLMSaeEvaluator`).
 * @module
 */

export * from "./config.ts";
export * from "./kernels.ts";
export * from "./run_evals.ts";
export * from "./reference.ts";
export * from "./training.ts";
