// Numerics of the reference forward: erf and the activations, rotary tables, the loss.
import {
  activation,
  defineModelConfig,
  erf,
  lmCrossEntropyLoss,
  rotaryTables,
} from "../../../model/mod.ts";
import { assertAllClose, assertClose, assertEquals } from "../../assert.ts";

Deno.test("erf and activations match known values", () => {
  assertClose(erf(0.5), 0.5204998778130465, 1e-15);
  assertClose(erf(1), 0.8427007929497149, 1e-15);
  assertClose(erf(-2), -0.9953222650189527, 1e-15);
  assertClose(erf(3), 0.9999779095030014, 1e-15);
  assertClose(1 - erf(4), 1.541725790028002e-8, 1e-16); // erfc(4), up to double spacing at 1
  assertClose(activation("gelu")(1), 0.8413447460685429, 1e-15);
  assertClose(activation("gelu_new")(1), 0.8411919906082768, 1e-15);
  assertClose(activation("gelu_pytorch_tanh")(-0.5), activation("gelu_new")(-0.5), 0);
  assertClose(activation("silu")(1), 0.7310585786300049, 1e-15);
  assertEquals(activation("relu")(-2), 0);
});

Deno.test("rotary tables: NeoX and GPT-J layouts, float32 angles", () => {
  const cfg = defineModelConfig({
    nLayers: 1,
    dModel: 16,
    nHeads: 2,
    dVocab: 5,
    nCtx: 8,
    actFn: "silu",
    positionalEmbeddingType: "rotary",
    rotaryDim: 4,
  });
  const t = rotaryTables(cfg, 3000);
  // Row p, column j: angle p / base^(i / (rd/2)), i = j mod 2 (NeoX half-split).
  assertClose(t.sin[1 * 4 + 0], Math.sin(1), 1e-7);
  assertClose(t.cos[2 * 4 + 3], Math.cos(2 / 100), 1e-7);
  assertEquals(t.sin[2999 * 4 + 1], t.sin[2999 * 4 + 3]);
  // The angle is rounded to float32 first (as torch computes it): visible at large positions.
  const f32Angle = Math.fround(2999 / Math.fround(100));
  assertClose(t.sin[2999 * 4 + 1], Math.sin(f32Angle), 1e-7);
  const gptj = rotaryTables({ ...cfg, rotaryAdjacentPairs: true }, 4);
  assertEquals(gptj.sin[3 * 4 + 0], gptj.sin[3 * 4 + 1]);
  assertClose(gptj.sin[3 * 4 + 2], Math.sin(0.03), 1e-7);
});

Deno.test("lmCrossEntropyLoss: per-token [B, P−1], mean, attention mask", () => {
  // logits favour token 1 strongly at every position.
  const V = 3, B = 2, P = 3;
  const data = new Float32Array(B * P * V);
  for (let i = 0; i < B * P; i++) data.set([0, 2, 0], i * V);
  const logits = { data, shape: [B, P, V] };
  const tokens = [[0, 1, 1], [2, 0, 1]];
  const per = lmCrossEntropyLoss(logits, tokens, true);
  assertEquals(per.shape, [2, 2]);
  const lse = Math.log(2 + Math.exp(2));
  assertAllClose(per.data, [lse - 2, lse - 2, lse, lse - 2], 1e-6);
  assertClose(lmCrossEntropyLoss(logits, tokens), (3 * (lse - 2) + lse) / 4, 1e-12);
  // Mask: row 1 position 0 padded → its prediction (p=0) is dropped.
  const masked = lmCrossEntropyLoss(logits, tokens, false, {
    attentionMask: [[1, 1, 1], [0, 1, 1]],
  });
  assertClose(masked, lse - 2, 1e-12);
});
