// GPT-2: tiny random models (keys with and without the transformer. prefix, F16 weights) match the
// naive HF forward; a real config converts as TL does.
import { modelConfigFromHf } from "../../../model/mod.ts";
import { assert, assertAllClose, assertEquals } from "../../assert.ts";
import { checkFamily } from "./_check.ts";
import { CONFIGS, randomHfTensors } from "./mod.ts";

Deno.test("gpt2 (keys without the transformer. prefix) matches the naive HF forward", async () => {
  const { cfg, proc } = await checkFamily("gpt2", 1, { stripPrefix: "transformer." });
  assertEquals(cfg.normalizationType, "LN");
  assertEquals(proc.cfg.normalizationType, "LNPre");
});

Deno.test("gpt2 with F16 safetensors: widened exactly, matches the naive HF forward", async () => {
  const { raw, tensors, header } = await checkFamily("gpt2", 11, { f16: true });
  assert([...header.tensors.values()].every((t) => t.dtype === "F16"), "written as F16");
  // `tensors` are the f16-rounded weights: the loader's W_E is exactly them, and the rounding
  // is real (so a loader that read the bits as bf16 or as f32 halves would fail above).
  const wte = tensors.get("transformer.wte.weight")!.data;
  assertAllClose(raw.params.get("embed.W_E")!.data, wte, 0, 0, "W_E = f16 wte");
  const exact = randomHfTensors(CONFIGS.gpt2, 11).get("transformer.wte.weight")!.data;
  assert(exact.some((x, i) => x !== wte[i]), "f16 rounding changed some weights");
});

Deno.test("gpt2: GPT-2 medium's HF config converts as TL does (spec §3)", () => {
  const medium = modelConfigFromHf({
    model_type: "gpt2",
    n_layer: 24,
    n_embd: 1024,
    n_head: 16,
    vocab_size: 50257,
    n_positions: 1024,
    n_ctx: 1024,
  });
  assertEquals([medium.nLayers, medium.dHead, medium.dMlp, medium.attnScale], [24, 64, 4096, 8]);
});
