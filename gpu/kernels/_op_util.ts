/**
 * Transitional: the names `sae/training/` still imports from here, now in the kernel toolkit
 * (`gpu/kernel.ts`). Goes when those files import the toolkit.
 * @module
 */

export {
  dispatchFlat,
  FLAT_WG,
  packUniform,
  WGSL_MAIN_ARGS,
  WGSL_WG_INDEX as WGSL_WG,
} from "../kernel.ts";
