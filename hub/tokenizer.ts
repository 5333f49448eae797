/**
 * Tokenizers built from Hugging Face `tokenizer.json` + `tokenizer_config.json` with
 * `@huggingface/tokenizers`, wrapped in a small {@link Tokenizer} interface with the special-token
 * defaults TransformerLens applies (eos defaults to `<|endoftext|>`, pad and bos default to eos).
 * @module
 */

import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { HubError, TokenizerError } from "./errors.ts";
import { hubDownload, type HubDownloadOptions } from "./download.ts";
import { join } from "../util/path.ts";
import { regularFileSize } from "../util/files.ts";

/** A tokenizer as saeflow uses it. */
export interface Tokenizer {
  /** Token ids of `text`, no special tokens added (special-token strings in it are kept as such). */
  encode(text: string): number[];
  /** Ids as HF `tokenizer(text)` gives them: with the post-processor's special tokens (BOS…). */
  encodeWithSpecialTokens(text: string): number[];
  /** Text of `ids` (`clean_up_tokenization_spaces=False`, as TransformerLens decodes). */
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
  /** BOS id (TransformerLens default: the eos token), or null if the vocab lacks it. */
  readonly bosTokenId: number | null;
  /** EOS id (default `<|endoftext|>`), or null if the vocab lacks it. */
  readonly eosTokenId: number | null;
  /** Padding id (default: the eos token), or null. */
  readonly padTokenId: number | null;
  /** Unknown-token id, or null. */
  readonly unkTokenId: number | null;
  /** BOS token string (what TransformerLens prepends to texts), or null. */
  readonly bosToken: string | null;
  /** Largest token id + 1 (vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** TransformerLens `tokenizer_prepends_bos`: `encodeWithSpecialTokens("")` is non-empty. */
  readonly prependsBos: boolean;
  /** `model_max_length` from the config, when it is a sane number. */
  readonly modelMaxLength: number | null;
  /** SEP id (`sep_token`), or null. */
  readonly sepTokenId?: number | null;
  /**
   * The parsed files it was built from, to build the same tokenizer elsewhere (e.g. in a Worker:
   * `tokenizerFromJson(s.tokenizerJson, s.tokenizerConfig, s.specialTokensMap)`).
   */
  readonly source?: TokenizerSource;
  /** All special ids (bos/eos/pad/unk/… plus `additional_special_tokens`), sorted, unique. */
  specialTokenIds(): number[];
  /** One token decoded on its own (TransformerLens `to_str_tokens` of one id). */
  tokenToString(id: number): string;
  /** Raw vocabulary piece of an id (e.g. `"Ġworld"`), or undefined. */
  idToToken(id: number): string | undefined;
  /** Id of a raw vocabulary piece, or undefined. */
  tokenToId(token: string): number | undefined;
}

/** The parsed JSON a tokenizer is built from (structured-cloneable). */
export interface TokenizerSource {
  /** `tokenizer.json`. */
  tokenizerJson: Record<string, unknown>;
  /** `tokenizer_config.json` (may be empty). */
  tokenizerConfig: Record<string, unknown>;
  /** `special_tokens_map.json` (may be empty). */
  specialTokensMap: Record<string, unknown>;
}

/** Parsed tokenizer files; strings are paths to read. */
export interface TokenizerFiles {
  /** `tokenizer.json` object or path. */
  tokenizerJson: Record<string, unknown> | string;
  /** `tokenizer_config.json` object or path (optional). */
  tokenizerConfig?: Record<string, unknown> | string;
  /** `special_tokens_map.json` object or path (optional; the config wins where both set). */
  specialTokensMap?: Record<string, unknown> | string;
}

const NAMED_SPECIALS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
] as const;

/** A special token value may be a string or a serialized AddedToken `{content, …}`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return null;
}

class WrappedTokenizer implements Tokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly unkTokenId: number | null;
  readonly bosToken: string | null;
  readonly vocabSize: number;
  readonly prependsBos: boolean;
  readonly modelMaxLength: number | null;
  readonly sepTokenId: number | null;
  source?: TokenizerSource;
  readonly #hf: HfTokenizer;
  readonly #special: number[];

  constructor(hf: HfTokenizer, config: Record<string, unknown>) {
    this.#hf = hf;
    const str = (k: string) => tokenContent(config[k]);
    // TransformerLens fills in missing special tokens this way (HookedTransformer.set_tokenizer).
    const eos = str("eos_token") ?? "<|endoftext|>";
    const pad = str("pad_token") ?? eos;
    const bos = str("bos_token") ?? eos;
    const id = (t: string | null) => (t === null ? null : hf.token_to_id(t) ?? null);
    this.eosTokenId = id(eos);
    this.padTokenId = id(pad);
    this.bosTokenId = id(bos);
    this.bosToken = this.bosTokenId === null ? null : bos;
    this.unkTokenId = id(str("unk_token"));
    this.sepTokenId = id(str("sep_token"));
    let max = -1;
    for (const v of hf.get_vocab(true).values()) if (v > max) max = v;
    this.vocabSize = max + 1;
    this.prependsBos = this.encodeWithSpecialTokens("").length > 0;
    const mml = config.model_max_length;
    this.modelMaxLength = typeof mml === "number" && mml > 0 && mml < 1e9 ? mml : null;
    const special = new Set<number>();
    for (const k of NAMED_SPECIALS) {
      const i = k === "bos_token"
        ? this.bosTokenId
        : k === "eos_token"
        ? this.eosTokenId
        : k === "pad_token"
        ? this.padTokenId
        : id(str(k));
      if (i !== null) special.add(i);
    }
    const extra = config.additional_special_tokens;
    for (const t of Array.isArray(extra) ? extra : []) {
      const i = id(tokenContent(t));
      if (i !== null) special.add(i);
    }
    this.#special = [...special].sort((a, b) => a - b);
  }

  #ids(text: string, addSpecial: boolean): number[] {
    const enc = this.#hf.encode(text, { add_special_tokens: addSpecial });
    const bad = enc.ids.findIndex((x) => typeof x !== "number");
    if (bad >= 0) {
      throw new TokenizerError(
        `cannot tokenize piece ${JSON.stringify(enc.tokens[bad])} of ${
          JSON.stringify(text.slice(0, 40))
        }: not in the vocabulary and the tokenizer has no unk_token`,
      );
    }
    return enc.ids;
  }

  encode(text: string): number[] {
    return this.#ids(text, false);
  }

  encodeWithSpecialTokens(text: string): number[] {
    return this.#ids(text, true);
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    const arr = Array.from(ids);
    if (arr.length === 0) return "";
    for (const i of arr) {
      if (!Number.isInteger(i) || i < 0 || i >= this.vocabSize) {
        throw new TokenizerError(
          `cannot decode token id ${i}: expected 0 ≤ id < ${this.vocabSize}`,
        );
      }
    }
    return this.#hf.decode(arr, {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  specialTokenIds(): number[] {
    return [...this.#special];
  }

  tokenToString(id: number): string {
    return this.decode([id]);
  }

  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }
}

/**
 * Builds a {@link Tokenizer} from parsed `tokenizer.json` / `tokenizer_config.json` objects
 * (`special_tokens_map.json` fills special tokens the config lacks).
 */
export function tokenizerFromJson(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown> = {},
  specialTokensMap: Record<string, unknown> = {},
): Tokenizer {
  const config = { ...specialTokensMap, ...tokenizerConfig };
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(tokenizerJson, config);
  } catch (err) {
    throw new TokenizerError(
      `tokenizer.json could not be loaded by @huggingface/tokenizers: ${
        err instanceof Error ? err.message : err
      }`,
      { cause: err },
    );
  }
  const tok = new WrappedTokenizer(hf, config);
  tok.source = { tokenizerJson, tokenizerConfig, specialTokensMap };
  return tok;
}

async function readJson(path: string, required: boolean): Promise<Record<string, unknown>> {
  let text: string;
  try {
    // A FIFO would block the read forever: only regular files are read.
    await regularFileSize(path, (m, cause) => new TokenizerError(m, { cause }));
    text = await Deno.readTextFile(path);
  } catch (err) {
    const cause = err instanceof TokenizerError ? err.cause : err;
    if (!required && cause instanceof Deno.errors.NotFound) return {};
    if (err instanceof TokenizerError) throw err;
    throw new TokenizerError(`cannot read ${path}: ${err instanceof Error ? err.message : err}`);
  }
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v;
  } catch (err) {
    throw new TokenizerError(`${path} is not a JSON object (${err})`);
  }
}

/**
 * Loads a tokenizer from a directory holding `tokenizer.json` (required),
 * `tokenizer_config.json` and `special_tokens_map.json` (optional), or from explicit files.
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./tokenizer.ts";
 * const tok = await loadTokenizer(new URL("../data/tiny-shakespeare-gpt2", import.meta.url).pathname);
 * if (tok.encode("Hello").join() !== "72,101,108,108,111") throw new Error();
 * ```
 */
export async function loadTokenizer(dirOrFiles: string | TokenizerFiles): Promise<Tokenizer> {
  const files: TokenizerFiles = typeof dirOrFiles === "string"
    ? {
      tokenizerJson: join(dirOrFiles, "tokenizer.json"),
      tokenizerConfig: join(dirOrFiles, "tokenizer_config.json"),
      specialTokensMap: join(dirOrFiles, "special_tokens_map.json"),
    }
    : dirOrFiles;
  const load = (v: Record<string, unknown> | string | undefined, required: boolean) =>
    typeof v === "string" ? readJson(v, required) : Promise.resolve(v ?? {});
  return tokenizerFromJson(
    await load(files.tokenizerJson, true),
    await load(files.tokenizerConfig, false),
    await load(files.specialTokensMap, false),
  );
}

/**
 * Downloads `tokenizer.json` (+ `tokenizer_config.json`, `special_tokens_map.json` when present)
 * of a hub repo through the cache and loads the tokenizer.
 */
export async function loadTokenizerFromHub(
  repoId: string,
  opts: HubDownloadOptions = {},
): Promise<Tokenizer> {
  const optional = async (path: string) => {
    try {
      return await hubDownload(repoId, path, opts);
    } catch (err) {
      // Absent optional file (offline: never downloaded, so it was absent or unused before).
      if (err instanceof HubError && (err.kind === "not_found" || err.kind === "offline")) {
        return undefined;
      }
      throw err;
    }
  };
  const tokenizerJson = await hubDownload(repoId, "tokenizer.json", opts);
  return loadTokenizer({
    tokenizerJson,
    tokenizerConfig: await optional("tokenizer_config.json") ?? {},
    specialTokensMap: await optional("special_tokens_map.json") ?? {},
  });
}
