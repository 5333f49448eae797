/**
 * The registry of SAE architectures (SAELens `register_sae_class` / `register_sae_training_class`
 * in one): architecture name → {@link SaeArchitectureUnit}. The built-in units are registered by
 * `builtin.ts`; users register theirs with {@link registerSaeArchitecture}, the same way.
 * @module
 */

import { ConfigError } from "../../config/errors.ts";
import { SaeError } from "../errors.ts";
import type { ArchitectureSpec, SaeArchitectureImpl, SaeArchitectureUnit } from "./unit.ts";

const units = new Map<string, SaeArchitectureUnit>();

function checkSpec(name: string, spec: ArchitectureSpec): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new ConfigError(`architecture name ${JSON.stringify(name)} is not a simple identifier`);
  }
  if (units.has(name)) {
    throw new ConfigError(`architecture ${JSON.stringify(name)} is already registered`);
  }
  if (spec === null || typeof spec !== "object") {
    throw new ConfigError(`architecture ${name}: config is ${spec}, expected its field spec`);
  }
  if (spec.inferenceFields === null && spec.trainingFields === null) {
    throw new ConfigError(`architecture ${name}: needs inference fields, training fields or both`);
  }
  if (spec.inferenceFields === null && spec.exportsAs === undefined) {
    throw new ConfigError(
      `architecture ${name}: a training-only architecture needs exportsAs (the inference ` +
        `architecture it is saved as)`,
    );
  }
}

/**
 * Registers an architecture's config fields only (SAELens `register_sae_class` for the config
 * side). Throws a `ConfigError` if `name` is taken, or if the spec has neither inference nor
 * training fields. Add the GPU inference later with {@link registerSaeArchitecture}.
 *
 * @example
 * ```ts
 * import { listArchitectures, registerArchitecture } from "./registry.ts";
 * registerArchitecture("my_relu_variant", { inferenceFields: [], trainingFields: [] });
 * if (!listArchitectures().includes("my_relu_variant")) throw new Error();
 * ```
 */
export function registerArchitecture(name: string, spec: ArchitectureSpec): void {
  checkSpec(name, spec);
  units.set(name, { config: spec });
}

function isImpl(v: unknown): v is SaeArchitectureImpl {
  return v !== null && typeof v === "object" && typeof (v as SaeArchitectureImpl).encode ===
      "function";
}

/**
 * Registers an architecture. With a {@link SaeArchitectureUnit} (config fields plus any of GPU
 * inference, GPU training and reference), `name` must be new. With a bare
 * {@link SaeArchitectureImpl} (GPU inference only), the config side must be given as
 * `configSpec` or already be registered with {@link registerArchitecture}. A duplicate
 * inference implementation is a `SaeError`; a taken name for a new unit a `ConfigError`.
 *
 * @example
 * ```ts
 * import { getSaeArchitecture, registerSaeArchitecture } from "./mod.ts";
 * import { unary } from "../../gpu/kernels/elementwise.ts";
 * import { Tensor } from "../../gpu/tensor.ts";
 * import { SAE } from "../sae.ts";
 * // A "shifted ReLU" SAE: f = ReLU(h − 1), with the standard tensors.
 * const standard = getSaeArchitecture("standard");
 * registerSaeArchitecture("doc_shifted_relu", {
 *   config: { inferenceFields: [], trainingFields: null, exportsAs: "doc_shifted_relu" },
 *   inference: {
 *     paramShapes: standard.paramShapes,
 *     encode(ctx) {
 *       const h = standard.encode({ ...ctx, hook: (_n, t) => t }); // ReLU(h)
 *       const f = unary("addScalar", h, { c: -1 });
 *       h.dispose();
 *       return ctx.hook("hook_sae_acts_post", unary("relu", f, { out: f }));
 *     },
 *   },
 * });
 * if (!getSaeArchitecture("doc_shifted_relu")) throw new Error();
 * // Identity weights: the pre-activations are the inputs themselves.
 * const eye = [1, 0, 0, 1];
 * const sae = await SAE.fromParams(
 *   { architecture: "doc_shifted_relu", dIn: 2, dSae: 2 },
 *   { W_enc: eye, b_enc: [0, 0], W_dec: eye, b_dec: [0, 0] },
 * );
 * using x = Tensor.from([0.5, 3, -2, 1.25], [2, 2]);
 * using f = sae.encode(x);
 * const got = await f.toArray();
 * if (got.join() !== "0,2,0,0.25") throw new Error(`shifted ReLU features ${got}`);
 * sae.dispose();
 * ```
 */
export function registerSaeArchitecture(name: string, unit: SaeArchitectureUnit): void;
/** Registers the GPU inference of `name` (see the overload above). */
export function registerSaeArchitecture(
  name: string,
  impl: SaeArchitectureImpl,
  configSpec?: ArchitectureSpec,
): void;
export function registerSaeArchitecture(
  name: string,
  unitOrImpl: SaeArchitectureUnit | SaeArchitectureImpl,
  configSpec?: ArchitectureSpec,
): void {
  if (!isImpl(unitOrImpl)) {
    const unit = unitOrImpl;
    if (unit === null || typeof unit !== "object") {
      throw new SaeError(
        `registerSaeArchitecture(${JSON.stringify(name)}): got ${unit}, expected an ` +
          "architecture unit ({ config, inference?, training?, reference? })",
      );
    }
    checkSpec(name, unit.config);
    units.set(name, { ...unit });
    return;
  }
  const existing = units.get(name);
  if (existing?.inference) {
    throw new SaeError(`SAE architecture ${JSON.stringify(name)} is already registered`);
  }
  if (configSpec) {
    registerArchitecture(name, configSpec);
  } else if (!existing) {
    throw new SaeError(
      `SAE architecture ${JSON.stringify(name)} has no config: pass its configSpec (the fields ` +
        `its cfg.json adds) or register it with registerArchitecture first`,
    );
  }
  units.get(name)!.inference = unitOrImpl;
}

/** The unit of `name`, or undefined. */
export function findArchitectureUnit(name: unknown): SaeArchitectureUnit | undefined {
  return typeof name === "string" ? units.get(name) : undefined;
}

/** Names of all registered architectures, in registration order. */
export function listArchitectures(): string[] {
  return [...units.keys()];
}

/**
 * The config spec of `name`. Throws a `ConfigError` listing the registered architectures if
 * unknown.
 */
export function getArchitecture(name: unknown, where = "config"): ArchitectureSpec {
  const unit = findArchitectureUnit(name);
  if (unit === undefined) {
    throw new ConfigError(
      `${where}: architecture is ${JSON.stringify(name)}, expected one of: ` +
        listArchitectures().join(", "),
    );
  }
  return unit.config;
}

/** The GPU inference of `name`; throws a `SaeError` listing the registered ones. */
export function getSaeArchitecture(name: string, where = "SAE"): SaeArchitectureImpl {
  const impl = findArchitectureUnit(name)?.inference;
  if (!impl) {
    throw new SaeError(
      `${where}: architecture ${JSON.stringify(name)} has no GPU implementation; registered: ` +
        listSaeArchitectures().join(", "),
    );
  }
  return impl;
}

/** Names of the architectures `SAE` can run (those with GPU inference). */
export function listSaeArchitectures(): string[] {
  return [...units].filter(([, u]) => u.inference).map(([name]) => name);
}
