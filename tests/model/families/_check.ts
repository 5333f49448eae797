// The check every family fixture runs: tiny random models written in HF layout and loaded back;
// the reference forward must match the fixture's independent naive HF-semantics forward (logits
// and every resid_pre), TL processing must keep log-probs, and hooks must have TL's names and
// shapes. Also the key-prefix check (keys with and without the family's model prefix).
import {
  hookNames,
  lmCrossEntropyLoss,
  loadModelFromDir,
  logSoftmax,
  type ModelConfig,
  referenceForward,
  TL_DEFAULT_PROCESSING,
} from "../../../model/mod.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../../io/dtypes.ts";
import { readSafetensorsHeader } from "../../../io/safetensors.ts";
import { assert, assertAllClose, assertClose, assertEquals } from "../../assert.ts";
import type { NaiveOptions } from "./_harness.ts";
import {
  CONFIGS,
  type HfT,
  type Json,
  naiveForward,
  randomHfTensors,
  writeHfModel,
  type WriteHfOptions,
} from "./mod.ts";

export const TOKENS = [[3, 17, 5, 9, 22, 1, 0, 14], [7, 7, 12, 2, 19, 4, 11, 6]];

/** TL's local-layer rule (differs from HF for Gemma-2: TL is global on even layers). */
export function tlLocal(cfg: ModelConfig): NaiveOptions["isLocal"] {
  return (l) => cfg.useLocalAttn && cfg.attnTypes![l] === "local";
}

export function flat(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat());
}

/**
 * Writes a tiny random model of config `family` (seeded) in HF layout, loads it back and checks
 * the reference forward against the fixture's naive HF forward (logits, every resid_pre), the
 * cache's TL hook order and shapes, and that TL processing keeps log-probs and the loss.
 */
export async function checkFamily(
  family: string,
  seed: number,
  write: WriteHfOptions = {},
) {
  const hf: Json = CONFIGS[family];
  let tensors = randomHfTensors(hf, seed);
  const dir = await writeHfModel(hf, tensors, write);
  try {
    if (write.bf16 || write.f16) {
      // The naive forward must see the bf16/f16-rounded weights the loader widens.
      const round = (x: Float32Array) =>
        write.bf16 ? bf16ToF32(f32ToBf16(x)) : f16ToF32(f32ToF16(x));
      const rounded = new Map<string, HfT>();
      for (const [n, t] of tensors) rounded.set(n, { data: round(t.data), shape: t.shape });
      tensors = rounded;
    }
    const raw = await loadModelFromDir(dir);
    const cfg = raw.cfg;
    const run = referenceForward(cfg, raw.params, TOKENS);
    const B = TOKENS.length, P = TOKENS[0].length, V = cfg.dVocab;
    for (let b = 0; b < B; b++) {
      const naive = naiveForward(hf, tensors, TOKENS[b], { isLocal: tlLocal(cfg) });
      const ours = run.logits!.data.subarray(b * P * V, (b + 1) * P * V);
      const nl = flat(naive.logits);
      // Observed max error ~2e-6 (float32 storage vs float64).
      assertAllClose(ours, nl, 1e-5, 1e-5, `${family} logits batch ${b}`);
      for (let l = 0; l <= cfg.nLayers; l++) {
        const name = l < cfg.nLayers
          ? `blocks.${l}.hook_resid_pre`
          : `blocks.${l - 1}.hook_resid_post`;
        const r = run.cache.get(name)!;
        const D = cfg.dModel;
        assertAllClose(
          r.data.subarray(b * P * D, (b + 1) * P * D),
          flat(naive.hidden[l]),
          2e-4,
          1e-4,
          `${family} ${name}`,
        );
      }
    }
    // Cache: TL order and shapes.
    assertEquals([...run.cache.keys()], hookNames(cfg), `${family} hook order`);
    const H = cfg.nHeads, Hkv = cfg.nKeyValueHeads ?? H, d = cfg.dHead;
    const shape = (n: string) => run.cache.get(`blocks.${cfg.nLayers - 1}.${n}`)?.shape;
    assertEquals(shape("attn.hook_q"), [B, P, H, d]);
    assertEquals(shape("attn.hook_k"), [B, P, Hkv, d]);
    assertEquals(shape("attn.hook_v"), [B, P, Hkv, d]);
    assertEquals(shape("attn.hook_z"), [B, P, H, d]);
    assertEquals(shape("attn.hook_pattern"), [B, H, P, P]);
    assertEquals(shape("mlp.hook_post"), [B, P, cfg.dMlp]);
    if (cfg.positionalEmbeddingType === "rotary") {
      assertEquals(shape("attn.hook_rot_k"), [B, P, Hkv, d]);
      assert(!run.cache.has("hook_pos_embed"));
    }

    // Default TL processing keeps log-probs and the loss.
    const proc = await loadModelFromDir(dir, { processing: TL_DEFAULT_PROCESSING });
    const procRun = referenceForward(proc.cfg, proc.params, TOKENS);
    assertAllClose(
      logSoftmax(procRun.logits!).data,
      logSoftmax(run.logits!).data,
      2e-4,
      0,
      `${family} processed`,
    );
    assertClose(
      lmCrossEntropyLoss(procRun.logits!, TOKENS),
      lmCrossEntropyLoss(run.logits!, TOKENS),
      2e-5,
    );
    const header = await readSafetensorsHeader(
      `${dir}/${write.sharded ? "model-00001-of-00002.safetensors" : "model.safetensors"}`,
    );
    return { cfg, raw, proc, run, procRun, hf, tensors, header };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The unembedding lives outside the model prefix in HF checkpoints. */
const HEADS = new Set(["lm_head.weight", "embed_out.weight"]);

/** Keys of a written checkpoint, other than the head, that do not start with `prefix`. */
function unprefixed(header: { tensors: Map<string, unknown> }, prefix: string): string[] {
  return [...header.tensors.keys()].filter((k) => !k.startsWith(prefix) && !HEADS.has(k));
}

/** Registers the test that keys with and without `prefix` load to the same parameters. */
export function testKeyPrefix(family: string, prefix: string, seed: number): void {
  Deno.test(`${family}: keys with and without the ${prefix} prefix load to the same parameters`, async () => {
    const withPrefix = await checkFamily(family, seed);
    assertEquals(unprefixed(withPrefix.header, prefix), [], `every key carries ${prefix}`);
    const stripped = await checkFamily(family, seed, { stripPrefix: prefix });
    const keys = [...stripped.header.tensors.keys()];
    assert(keys.every((k) => !k.startsWith(prefix)), `no key carries ${prefix}`);
    assert(keys.some((k) => k.includes("layers.0.")), "the layer keys are there, bare");
    assertEquals([...stripped.raw.params.keys()].sort(), [...withPrefix.raw.params.keys()].sort());
    for (const [name, t] of withPrefix.raw.params) {
      assertAllClose(stripped.raw.params.get(name)!.data, t.data, 0, 0, `${family} ${name}`);
    }
  });
}
