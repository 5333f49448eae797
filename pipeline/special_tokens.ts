/**
 * SAELens's special-token fields (`begin_batch_token`, `begin_sequence_token`,
 * `sequence_separator_token`) resolved against a tokenizer: shared by the runner, the
 * activations store, the cache and the pretokenize runners.
 * @module
 */

import type { Tokenizer } from "../hub/tokenizer.ts";
import { PipelineError } from "./errors.ts";

/** Resolves one special-token field (`"bos"`, `"eos"`, `"sep"`, an id, null) to a token id or null. */
export function resolveSpecialToken(
  value: string | number | null,
  tok: Tokenizer | null,
  field: string,
): number | null {
  if (value === null) return null;
  if (typeof value === "number") return value;
  if (!tok) return null; // SAELens: no tokenizer, no special tokens
  const id = value === "bos"
    ? tok.bosTokenId
    : value === "eos"
    ? tok.eosTokenId
    : value === "sep"
    ? tok.sepTokenId ?? null
    : undefined;
  if (id === undefined) {
    throw new PipelineError(
      `${field} is ${JSON.stringify(value)}, expected bos, eos, sep, an id or null`,
    );
  }
  return id;
}
