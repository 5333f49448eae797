/**
 * TransformerLens `to_tokens` / `to_str_tokens` / `to_single_token` semantics on a
 * {@link Tokenizer}.
 * @module
 */

import { TokenizerError } from "./errors.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** Options of {@link toTokens}. */
export interface ToTokensOptions {
  /** Prepend BOS (TransformerLens `default_prepend_bos`, True except Qwen/Bloom). Default true. */
  prependBos?: boolean;
  /** Where batch padding goes. Default `"right"` (TransformerLens default). */
  paddingSide?: "right" | "left";
  /** Cut each sequence to `nCtx` tokens (HF truncation, right side). Default true. */
  truncate?: boolean;
  /** Model context length used when truncating; no truncation when undefined. */
  nCtx?: number;
}

/** A padded batch of token ids. */
export interface TokenBatch {
  /** Row-major `[batch, pos]` ids. */
  ids: Int32Array;
  /** `[batch, pos]`. */
  shape: [number, number];
  /** Real (unpadded) length of each row. */
  lengths: number[];
  /** `[batch, pos]`: 1 for real tokens, 0 for padding. */
  attentionMask: Uint8Array;
}

/**
 * HF truncation: the text's own tokens are cut so that, with the special tokens the
 * post-processor adds around them (e.g. BOS before, EOS after), the total is `nCtx`.
 */
function truncateKeepingSpecials(full: number[], content: number[], nCtx: number): number[] {
  let pre = -1;
  for (let i = 0; i + content.length <= full.length && pre < 0; i++) {
    let same = true;
    for (let j = 0; j < content.length && same; j++) same = full[i + j] === content[j];
    if (same) pre = i;
  }
  if (pre < 0) return full.slice(0, nCtx);
  const prefix = full.slice(0, pre);
  const suffix = full.slice(pre + content.length);
  const keep = Math.max(0, nCtx - prefix.length - suffix.length);
  return [...prefix, ...content.slice(0, keep), ...suffix];
}

/** One text's ids exactly as TransformerLens builds them, before padding. */
function tokensOf(tok: Tokenizer, text: string, opts: ToTokensOptions): number[] {
  const prependBos = opts.prependBos ?? true;
  let input = text;
  if (prependBos && !tok.prependsBos) {
    // TL prepends the BOS *string* to the text (get_input_with_manually_prepended_bos).
    if (tok.bosToken === null) {
      throw new TokenizerError(
        "prependBos is true but the tokenizer has no BOS token (nor an eos to default to); " +
          "pass prependBos: false",
      );
    }
    input = tok.bosToken + text;
  }
  let ids = tok.encodeWithSpecialTokens(input);
  if ((opts.truncate ?? true) && opts.nCtx !== undefined && ids.length > opts.nCtx) {
    ids = truncateKeepingSpecials(ids, tok.encode(input), opts.nCtx);
  }
  // TL removes the tokenizer's own BOS afterwards (get_tokens_with_bos_removed).
  if (!prependBos && tok.prependsBos && ids.length > 0 && ids[0] === tok.bosTokenId) {
    ids = ids.slice(1);
  }
  return ids;
}

/**
 * Tokenizes one text or a batch like TransformerLens `model.to_tokens`: BOS prepended when
 * `prependBos` (as the BOS string if the tokenizer does not add one itself; a tokenizer-added BOS
 * is removed when `prependBos` is false), padded with the pad token (right by default), truncated
 * to `nCtx`. A single string gives a batch of one.
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./tokenizer.ts";
 * import { toTokens } from "./to_tokens.ts";
 * const tok = await loadTokenizer(new URL("../data/tiny-shakespeare-gpt2", import.meta.url).pathname);
 * const b = toTokens(tok, ["Hi", "Hey"]);
 * if (b.ids.join() !== "256,72,105,256,256,72,101,121") throw new Error(b.ids.join());
 * ```
 */
export function toTokens(
  tok: Tokenizer,
  input: string | readonly string[],
  opts: ToTokensOptions = {},
): TokenBatch {
  if (!tok || typeof tok.encode !== "function") {
    throw new TokenizerError(`toTokens: the tokenizer is ${tok}, expected a Tokenizer`);
  }
  if (
    typeof input !== "string" &&
    !(Array.isArray(input) && input.every((t) => typeof t === "string"))
  ) {
    throw new TokenizerError("toTokens: the input must be a string or an array of strings");
  }
  const texts = typeof input === "string" ? [input] : input;
  const rows = texts.map((t) => tokensOf(tok, t, opts));
  const pos = rows.reduce((m, r) => Math.max(m, r.length), 0);
  const batch = rows.length;
  const ids = new Int32Array(batch * pos);
  const attentionMask = new Uint8Array(batch * pos);
  const left = (opts.paddingSide ?? "right") === "left";
  for (let b = 0; b < batch; b++) {
    const r = rows[b];
    if (r.length < pos && tok.padTokenId === null) {
      throw new TokenizerError(
        `batch row ${b} needs padding (${r.length} < ${pos} tokens) but the tokenizer has no ` +
          "pad token (nor an eos to default to)",
      );
    }
    const start = left ? pos - r.length : 0;
    ids.fill(tok.padTokenId ?? 0, b * pos, (b + 1) * pos);
    ids.set(r, b * pos + start);
    attentionMask.fill(1, b * pos + start, b * pos + start + r.length);
  }
  return { ids, shape: [batch, pos], lengths: rows.map((r) => r.length), attentionMask };
}

/**
 * Each token of `input` decoded on its own (TransformerLens `to_str_tokens`). Text input is
 * tokenized like {@link toTokens} (so a BOS comes first when `prependBos`).
 */
export function toStrTokens(
  tok: Tokenizer,
  input: string | ArrayLike<number>,
  opts: Omit<ToTokensOptions, "paddingSide"> = {},
): string[] {
  const ids = typeof input === "string" ? tokensOf(tok, input, opts) : Array.from(input);
  return ids.map((id) => tok.tokenToString(id));
}

/** The id of a string that must be exactly one token (TransformerLens `to_single_token`). */
export function toSingleToken(tok: Tokenizer, text: string): number {
  const ids = tok.encode(text);
  if (ids.length !== 1) {
    throw new TokenizerError(
      `${JSON.stringify(text)} is ${ids.length} tokens (${ids.join(", ")}), expected exactly one`,
    );
  }
  return ids[0];
}
