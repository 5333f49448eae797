/**
 * Conversion loaders of pretrained SAEs (native SAELens, sparsify, Llama Scope, Gemma Scope 1
 * and 2) and the npz reader.
 * @module
 */

export {
  download,
  downloadOptional,
  repoPath,
  type SaeDiskLoader,
  type SaeLoader,
  type SaeLoaderContext,
  type SaeLoaderResult,
} from "./types.ts";
export {
  getSaeDiskLoader,
  getSaeLoader,
  listSaeLoaders,
  registerSaeLoader,
  UNSUPPORTED_CONVERSIONS,
} from "./registry.ts";
export { saeLensDiskLoader, saeLensLoader } from "./sae_lens.ts";
export { SPARSIFY_WEIGHTS_FILENAME, sparsifyDiskLoader, sparsifyLoader } from "./sparsify.ts";
export { llamaScopeLoader, llamaScopeR1DistillLoader } from "./llama_scope.ts";
export { gemma2Loader, gemma3Loader } from "./gemma.ts";
export { parseNpy, readNpz } from "./npz.ts";
