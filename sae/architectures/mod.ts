/**
 * SAE architectures: one folder per architecture (config fields, GPU inference, GPU training,
 * plain-TS reference), registered through one interface, {@link SaeArchitectureUnit}. Importing
 * this module registers the built-in ones.
 * @module
 */

import "./builtin.ts";
import type { SAEConfig } from "../config_types.ts";
import type { SaeArchitectureImpl } from "./unit.ts";
import { dOutOf } from "./shared.ts";

export type {
  ArchitectureSpec,
  EncodeContext,
  EncodeHookName,
  RefEncoded,
  ReferenceArchitecture,
  SaeArchitectureImpl,
  SaeArchitectureUnit,
  TrainingArchitecture,
} from "./unit.ts";
export {
  findArchitectureUnit,
  getArchitecture,
  getSaeArchitecture,
  listArchitectures,
  listSaeArchitectures,
  registerArchitecture,
  registerSaeArchitecture,
} from "./registry.ts";
export { BUILTIN_ARCHITECTURES } from "./builtin.ts";

/** Output width: `dOut` for transcoders, else `dIn`. */
export function outputWidth(cfg: SAEConfig, impl: SaeArchitectureImpl): number {
  return impl.transcoder ? dOutOf(cfg) : cfg.dIn;
}
