/**
 * Shared helpers of the families' HF → TL weight mappings: a tensor lookup that tries the
 * family's key prefix and names the source on failure, and the head-splitting rearrangements.
 * @module
 */

import { type HostTensor, numel, shapeStr } from "../../util/host_tensor.ts";
import type { ModelConfig } from "../config.ts";
import { ModelError } from "../errors.ts";
import type { ParamMap } from "../params.ts";

/** Looks up HF tensors by name, trying `prefix + name` first, then the bare `name`. */
export class HfLookup {
  /** Keys actually read, so the caller can report leftovers if it wants. */
  readonly used = new Set<string>();

  /**
   * @param tensors HF state dict (already float32).
   * @param prefix Model prefix (`"transformer."`, `"model."`, `"gpt_neox."`).
   * @param source What the tensors came from, for error messages (a file or directory).
   */
  constructor(
    readonly tensors: Map<string, HostTensor>,
    readonly prefix: string,
    readonly source: string,
  ) {}

  /** The key under which `name` exists (prefixed or bare), or `undefined`. */
  resolve(name: string): string | undefined {
    for (const key of [this.prefix + name, name]) if (this.tensors.has(key)) return key;
    return undefined;
  }

  /** True when `name` exists (prefixed or bare). */
  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }

  /** The tensor `name`, checked against `shape`; throws naming the key, file and shapes. */
  get(name: string, shape: number[]): HostTensor {
    const key = this.resolve(name);
    if (key === undefined) {
      throw new ModelError(
        `missing tensor "${this.prefix}${name}"${
          this.prefix ? ` (also tried "${name}")` : ""
        } in ${this.source}`,
      );
    }
    const t = this.tensors.get(key)!;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelError(
        `tensor "${key}" in ${this.source} has shape ${shapeStr(t.shape)}, expected ${
          shapeStr(shape)
        }`,
      );
    }
    this.used.add(key);
    return t;
  }

  /** Like {@link get} but returns `undefined` when absent. */
  maybe(name: string, shape: number[]): HostTensor | undefined {
    return this.has(name) ? this.get(name, shape) : undefined;
  }
}

/** `[r, c]` → `[c, r]` (a fresh array). */
export function transpose(t: HostTensor): HostTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { data: out, shape: [c, r] };
}

/**
 * Gathers a per-head input projection `[nH, dIn, d]` from an HF matrix.
 * `row(h, k)` is the HF output index of head h, component k. `layout` says how the HF matrix
 * stores it: `"outIn"` (nn.Linear, `[out, in]`) or `"inOut"` (GPT-2 Conv1D, `[in, out]`).
 */
export function gatherInProj(
  w: HostTensor,
  nH: number,
  dIn: number,
  d: number,
  row: (h: number, k: number) => number,
  layout: "outIn" | "inOut",
): HostTensor {
  const out = new Float32Array(nH * dIn * d);
  const cols = w.shape[1];
  for (let h = 0; h < nH; h++) {
    for (let k = 0; k < d; k++) {
      const o = row(h, k);
      for (let j = 0; j < dIn; j++) {
        out[(h * dIn + j) * d + k] = layout === "outIn"
          ? w.data[o * cols + j]
          : w.data[j * cols + o];
      }
    }
  }
  return { data: out, shape: [nH, dIn, d] };
}

/** Gathers a per-head bias `[nH, d]` from an HF bias vector with index `row(h, k)`. */
export function gatherBias(
  b: HostTensor,
  nH: number,
  d: number,
  row: (h: number, k: number) => number,
): HostTensor {
  const out = new Float32Array(nH * d);
  for (let h = 0; h < nH; h++) for (let k = 0; k < d; k++) out[h * d + k] = b.data[row(h, k)];
  return { data: out, shape: [nH, d] };
}

/** nn.Linear `o_proj`/`dense` weight `[D, H·d]` → TL `W_O [H, d, D]`. */
export function outProjFromLinear(w: HostTensor, nH: number, d: number): HostTensor {
  const t = transpose(w); // [H·d, D] has W_O's memory layout
  return { data: t.data, shape: [nH, d, w.shape[0]] };
}

/** A zero tensor, used for biases the HF model does not have (TL fills zeros too). */
export function zerosOf(shape: number[]): HostTensor {
  return { data: new Float32Array(numel(shape)), shape };
}

/** Stores `t` under `name`, reshaped to `shape` (same element count). */
export function put(params: ParamMap, name: string, t: HostTensor, shape = t.shape): void {
  if (numel(shape) !== t.data.length) {
    throw new ModelError(`${name}: cannot view ${t.data.length} elements as ${shapeStr(shape)}`);
  }
  params.set(name, { data: t.data, shape: [...shape] });
}

/** `lm_head.weight` (or `headName`) transposed to `[D, V]`, falling back to tied embeddings. */
export function unembedFrom(
  cfg: ModelConfig,
  hf: HfLookup,
  embedName: string,
  headName = "lm_head.weight",
): HostTensor {
  const shape = [cfg.dVocab, cfg.dModel];
  // lm_head lives outside the model prefix; resolve() also accepts a prefixed copy.
  if (hf.has(headName)) return transpose(hf.get(headName, shape));
  if (!cfg.tieWordEmbeddings) {
    throw new ModelError(
      `missing tensor "${headName}" in ${hf.source} (tie_word_embeddings is false)`,
    );
  }
  return transpose(hf.get(embedName, shape));
}

/** Rows of a positional table as stored (checked against nCtx by {@link trimPos}). */
export function posRows(hf: HfLookup, name: string): number {
  const key = hf.resolve(name);
  return key === undefined ? 0 : hf.tensors.get(key)!.shape[0];
}

/** TL keeps the first nCtx rows of `W_pos`. */
export function trimPos(wpe: HostTensor, cfg: ModelConfig): HostTensor {
  const [rows, D] = wpe.shape;
  if (rows < cfg.nCtx) {
    throw new ModelError(`position table has ${rows} rows, fewer than nCtx ${cfg.nCtx}`);
  }
  if (rows === cfg.nCtx) return wpe;
  return { data: wpe.data.slice(0, cfg.nCtx * D), shape: [cfg.nCtx, D] };
}
