/**
 * The config side of the SAE architecture registry: the fields every config has, and the
 * per-architecture lookups over the units of `sae/architectures/` (where each architecture's
 * fields live, beside its inference, training and reference).
 * @module
 */

import type { FieldSpec } from "../config/fields.ts";
import { getArchitecture } from "./architectures/mod.ts";
import { SIZE } from "./architectures/shared.ts";

export type { ArchitectureSpec } from "./architectures/mod.ts";
export { getArchitecture, listArchitectures, registerArchitecture } from "./architectures/mod.ts";
export { validateMatryoshkaWidths } from "./architectures/matryoshka_batchtopk/index.ts";

/** Fields every inference config has, in SAELens' `SAEConfig` order (before `metadata`). */
export const BASE_FIELDS: readonly FieldSpec[] = [
  { name: "d_in", kind: SIZE, required: true },
  { name: "d_sae", kind: SIZE, required: true },
  { name: "dtype", kind: { type: "string" }, default: "float32" },
  { name: "device", kind: { type: "string" }, default: "cpu" },
  { name: "apply_b_dec_to_input", kind: { type: "bool" }, default: true },
  {
    name: "normalize_activations",
    kind: {
      type: "enum",
      values: ["none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"],
    },
    default: "none",
  },
  {
    name: "reshape_activations",
    kind: { type: "enum", values: ["none", "hook_z"] },
    default: "none",
  },
];

/** The field every training config adds after `metadata` (`TrainingSAEConfig`). */
export const TRAINING_BASE_FIELDS: readonly FieldSpec[] = [
  { name: "decoder_init_norm", kind: { type: "number", min: 0, nullable: true }, default: 0.1 },
];

/** The inference architecture a training config of architecture `name` is exported as. */
export function inferenceArchitectureOf(name: string): string {
  return getArchitecture(name).exportsAs ?? name;
}
