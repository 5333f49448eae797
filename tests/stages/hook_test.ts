/**
 * The hook stage on the shipped tiny GPT-2: its rows equal the model's own cached activations
 * selected by hand (position slice, one head of hook_z, hook_z flattened, special tokens
 * dropped), the forward stops early, and bad hooks or tokens are named errors.
 */

import { getGpu } from "../../gpu/device.ts";
import { readAll } from "../../gpu/tensor.ts";
import { disposeCache } from "../../model/hooks/gpu.ts";
import { HookedTransformer } from "../../model/hooked_transformer.ts";
import { harvest, hook, stopAtLayerForAll } from "../../stages/hook.ts";
import { StageError, startCursor, type TokenBlock } from "../../stages/types.ts";
import { Mulberry32 } from "../../util/rng.ts";
import { assertEquals, assertRejects, assertThrows } from "../assert.ts";

const gpu = await getGpu();
const model = await HookedTransformer.fromPretrainedNoProcessing(
  new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname,
  { gpu },
);

const B = 3, T = 10;
const rng = new Mulberry32(3);
const tokens = Int32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 256 : rng.nextInt(256)));
tokens[5] = 256; // a BOS in the middle of a row, dropped too
const block: TokenBlock = { tokens, nSeq: B, contextSize: T, cursor: startCursor() };

Deno.test("hook: activations equal the cached hook values selected by hand", async () => {
  const hooks = [
    { hookName: "blocks.2.hook_resid_pre" },
    { hookName: "blocks.1.attn.hook_z", headIndex: 2 },
    { hookName: "blocks.1.attn.hook_z" },
  ];
  const got = await harvest(model, block, {
    hooks,
    seqposSlice: [2, 8],
    excludeSpecialTokens: [256],
  });
  const rows: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let p = 2; p < 8; p++) if (tokens[b * T + p] !== 256) rows.push(b * T + p);
  }
  assertEquals(got.rows, rows.length);
  assertEquals(Array.from(got.tokenIds), rows.map((i) => tokens[i]));
  const nested = Array.from(
    { length: B },
    (_, b) => Array.from(tokens.subarray(b * T, (b + 1) * T)),
  );
  // The same hooks cached (caching more hooks may change which kernels fuse, and so rounding).
  const { cache, logits, residual } = await model.runWithCache(nested, {
    namesFilter: ["blocks.2.hook_resid_pre", "blocks.1.attn.hook_z"],
  });
  logits?.dispose();
  residual?.dispose();
  const [resid, z] = await readAll([
    cache.get("blocks.2.hook_resid_pre")!,
    cache.get("blocks.1.attn.hook_z")!,
  ]);
  disposeCache(cache);
  const D = model.cfg.dModel, H = model.cfg.nHeads, dh = model.cfg.dHead;
  const want = (src: ArrayLike<number>, width: number, offset: number, len: number) =>
    Float32Array.from(
      rows.flatMap((r) => Array.from({ length: len }, (_, j) => src[r * width + offset + j])),
    );
  const [a, zh, zf] = await readAll([...got.acts.values()]);
  assertEquals([...got.acts.keys()], [
    "blocks.2.hook_resid_pre",
    "blocks.1.attn.hook_z#2",
    "blocks.1.attn.hook_z",
  ]);
  assertEquals(a, want(resid, D, 0, D));
  assertEquals(zh, want(z, H * dh, 2 * dh, dh));
  assertEquals(zf, want(z, H * dh, 0, H * dh));
  for (const t of got.acts.values()) t.dispose();
});

Deno.test("hook: the stage streams blocks and stops the forward after the deepest hook", async () => {
  assertEquals(stopAtLayerForAll(["blocks.2.hook_resid_pre", "blocks.0.hook_mlp_out"]), 3);
  assertEquals(
    stopAtLayerForAll(["blocks.2.hook_resid_pre", "ln_final.hook_normalized"]),
    undefined,
  );
  const out = await Array.fromAsync(
    ReadableStream.from([block, block]).pipeThrough(
      hook(model, { hooks: [{ hookName: "blocks.0.hook_resid_post" }] }),
    ),
  );
  assertEquals(out.length, 2);
  assertEquals(out[0].acts.get("blocks.0.hook_resid_post")!.shape, [B * T, model.cfg.dModel]);
  for (const o of out) for (const t of o.acts.values()) t.dispose();
});

Deno.test("hook: bad hooks and tokens are named errors", async () => {
  assertThrows(
    () => hook(model, { hooks: [{ hookName: "blocks.2.hook_resid_pr" }] }),
    StageError,
    'hook "blocks.2.hook_resid_pr" is not a hook point of',
  );
  await assertRejects(
    () => harvest(model, block, { hooks: [{ hookName: "blocks.1.hook_resid_pre", headIndex: 0 }] }),
    StageError,
    "have no head dimension",
  );
  await assertRejects(
    () => harvest(model, block, { hooks: [{ hookName: "blocks.1.attn.hook_z", headIndex: 9 }] }),
    StageError,
    "has 4 heads",
  );
  const bad = { ...block, tokens: tokens.map((t, i) => (i === 13 ? 300 : t)) };
  await assertRejects(
    () => harvest(model, bad, { hooks: [{ hookName: "blocks.0.hook_resid_pre" }] }),
    StageError,
    "token 300 at [1, 3] is outside the model's vocabulary [0, 257)",
  );
});
