// Hook semantics of the reference forward: replacements flow downstream, ln1 fires three
// times, stopAtLayer, names filters, flag-gated hooks and SAELens's mlp.hook_in.
import {
  getParam,
  hookNames,
  type HostTensor,
  loadModelFromDir,
  ModelError,
  referenceForward,
} from "../../../model/mod.ts";
import { assert, assertAllClose, assertEquals, assertThrows } from "../../assert.ts";
import { CONFIGS, randomHfTensors, writeHfModel } from "../families/mod.ts";

async function load(family: string, seed: number) {
  const dir = await writeHfModel(CONFIGS[family], randomHfTensors(CONFIGS[family], seed));
  try {
    return await loadModelFromDir(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const gpt2 = await load("gpt2", 21);
const llama = await load("llama", 22);
const A = [[3, 17, 5, 9, 22, 1]], Bt = [[8, 2, 2, 13, 0, 19]];

function differs(a: Float32Array, b: Float32Array): boolean {
  return a.some((x, i) => Math.abs(x - b[i]) > 1e-5);
}

Deno.test("zero-ablating one head at hook_z changes attn_out exactly as W_O says", () => {
  const { cfg, params } = gpt2;
  const clean = referenceForward(cfg, params, A);
  const H = cfg.nHeads, d = cfg.dHead, D = cfg.dModel;
  const run = referenceForward(cfg, params, A, {
    hooks: (name, v) => {
      if (name !== "blocks.0.attn.hook_z") return;
      const out = new Float32Array(v.data);
      for (let r = 0; r < out.length / (H * d); r++) out.fill(0, r * H * d, r * H * d + d);
      return { data: out, shape: v.shape };
    },
  });
  const z = run.cache.get("blocks.0.attn.hook_z")!.data;
  assert(z.subarray(0, d).every((x) => x === 0), "cache must hold the replacement");
  assertAllClose(
    run.cache.get("blocks.0.hook_resid_pre")!.data,
    clean.cache.get("blocks.0.hook_resid_pre")!.data,
    0,
  );
  // attn_out = z · W_O + b_O with the ablated z.
  const WO = getParam(params, "blocks.0.attn.W_O", [H, d, D]).data,
    bO = params.get("blocks.0.attn.b_O")!.data;
  const out = run.cache.get("blocks.0.hook_attn_out")!.data;
  for (const p of [0, 5]) {
    for (const c of [0, 7]) {
      let s = bO[c];
      for (let i = 0; i < H * d; i++) s += z[p * H * d + i] * WO[i * D + c];
      assert(Math.abs(out[p * D + c] - s) < 1e-5, `attn_out[${p},${c}]`);
    }
  }
  assert(differs(run.logits!.data, clean.logits!.data), "ablation must reach the logits");
});

Deno.test("patching resid_pre of layer 1 from another run reproduces that run downstream", () => {
  const { cfg, params } = gpt2;
  const other = referenceForward(cfg, params, Bt);
  const patched = referenceForward(cfg, params, A, {
    hooks: (name) => name === "blocks.1.hook_resid_pre" ? other.cache.get(name) : undefined,
  });
  assertAllClose(patched.logits!.data, other.logits!.data, 1e-6);
});

Deno.test("in-place edits flow on; bad replacements are rejected", () => {
  const { cfg, params } = gpt2;
  const clean = referenceForward(cfg, params, A);
  const edited = referenceForward(cfg, params, A, {
    hooks: (name, v) => {
      if (name === "blocks.1.mlp.hook_post") v.data.fill(0);
    },
  });
  assert(
    differs(
      edited.cache.get("blocks.1.hook_mlp_out")!.data,
      clean.cache.get("blocks.1.hook_mlp_out")!.data,
    ),
  );
  assertThrows(
    () =>
      referenceForward(cfg, params, A, {
        hooks: (n) => n === "hook_embed" ? { data: new Float32Array(3), shape: [3] } : undefined,
      }),
    ModelError,
    "hook hook_embed: replacement has shape [3]",
  );
});

Deno.test("ln1 hooks fire three times (q, k, v streams); each replacement feeds its own stream", () => {
  const { cfg, params } = gpt2;
  const clean = referenceForward(cfg, params, A);
  let calls = 0;
  const run = referenceForward(cfg, params, A, {
    hooks: (name, v): HostTensor | undefined => {
      if (name !== "blocks.0.ln1.hook_normalized") return;
      calls++;
      if (calls === 3) return { data: v.data.map((x) => 2 * x), shape: v.shape }; // value stream
    },
  });
  assertEquals(calls, 3);
  const same = (n: string) =>
    assertAllClose(run.cache.get(n)!.data, clean.cache.get(n)!.data, 0, 0, n);
  same("blocks.0.attn.hook_q");
  same("blocks.0.attn.hook_k");
  assert(
    differs(
      run.cache.get("blocks.0.attn.hook_v")!.data,
      clean.cache.get("blocks.0.attn.hook_v")!.data,
    ),
  );
});

Deno.test("stopAtLayer returns the residual and fires nothing later", () => {
  const { cfg, params } = gpt2;
  const full = referenceForward(cfg, params, A);
  const s1 = referenceForward(cfg, params, A, { stopAtLayer: 1 });
  assertEquals(s1.logits, null);
  assertAllClose(s1.residual!.data, full.cache.get("blocks.0.hook_resid_post")!.data, 0);
  assertEquals([...s1.cache.keys()], hookNames(cfg, { stopAtLayer: 1 }));
  assert(!s1.cache.has("blocks.1.hook_resid_pre") && !s1.cache.has("ln_final.hook_scale"));
  const s0 = referenceForward(cfg, params, A, { stopAtLayer: 0 });
  assertEquals([...s0.cache.keys()], ["hook_embed", "hook_pos_embed"]);
  const e = full.cache.get("hook_embed")!.data, p = full.cache.get("hook_pos_embed")!.data;
  assertAllClose(s0.residual!.data, e.map((x, i) => x + p[i]), 0);
  const neg = referenceForward(cfg, params, A, { stopAtLayer: -1 });
  assertAllClose(neg.residual!.data, s1.residual!.data, 0);
  // stopAtLayer = nLayers: all blocks, but no ln_final / unembed.
  const sN = referenceForward(cfg, params, A, { stopAtLayer: cfg.nLayers });
  assertEquals(sN.logits, null);
  assertAllClose(sN.residual!.data, full.cache.get("blocks.1.hook_resid_post")!.data, 0);
});

Deno.test("namesFilter: exact name, list, predicate, nothing", () => {
  const { cfg, params } = gpt2;
  const keys = (
    f: Parameters<typeof referenceForward>[3],
  ) => [...referenceForward(cfg, params, A, f).cache.keys()];
  assertEquals(keys({ namesFilter: "blocks.1.hook_resid_pre" }), ["blocks.1.hook_resid_pre"]);
  assertEquals(keys({ namesFilter: ["blocks.0.mlp.hook_in", "hook_embed"] }), [
    "hook_embed",
    "blocks.0.mlp.hook_in",
  ]);
  assertEquals(keys({ namesFilter: (n) => n.endsWith("hook_scale") }).length, 2 * 2 + 1);
  assertEquals(keys({ namesFilter: [] }), []);
});

Deno.test("useAttnResult and useHookMlpIn add their hooks without changing outputs", () => {
  const { cfg, params } = gpt2;
  const clean = referenceForward(cfg, params, A);
  const flagged = { ...cfg, useAttnResult: true, useHookMlpIn: true };
  const run = referenceForward(flagged, params, A);
  assertEquals([...run.cache.keys()], hookNames(flagged));
  assertAllClose(run.logits!.data, clean.logits!.data, 1e-6);
  const res = run.cache.get("blocks.0.attn.hook_result")!;
  assertEquals(res.shape, [1, 6, cfg.nHeads, cfg.dModel]);
  const bO = params.get("blocks.0.attn.b_O")!.data, D = cfg.dModel, H = cfg.nHeads;
  const out = run.cache.get("blocks.0.hook_attn_out")!.data;
  let s = bO[3];
  for (let h = 0; h < H; h++) s += res.data[(2 * H + h) * D + 3];
  assert(Math.abs(out[2 * D + 3] - s) < 1e-5);
  assertAllClose(
    run.cache.get("blocks.1.hook_mlp_in")!.data,
    run.cache.get("blocks.1.hook_resid_mid")!.data,
    0,
  );
});

Deno.test("mlp.hook_in sees the ln2 module output (RMS: normalized · w) and can be patched", () => {
  const { cfg, params } = llama;
  const run = referenceForward(cfg, params, A);
  const norm = run.cache.get("blocks.1.ln2.hook_normalized")!.data;
  const w = params.get("blocks.1.ln2.w")!.data, D = cfg.dModel;
  assertAllClose(
    run.cache.get("blocks.1.mlp.hook_in")!.data,
    norm.map((x, i) => x * w[i % D]),
    1e-6,
  );
  assertEquals(run.cache.get("blocks.1.mlp.hook_pre_linear")!.shape, [1, 6, cfg.dMlp]);
  const patched = referenceForward(cfg, params, A, {
    hooks: (n, v) =>
      n === "blocks.1.mlp.hook_in" ? { data: v.data.map(() => 0), shape: v.shape } : undefined,
  });
  assert(patched.cache.get("blocks.1.mlp.hook_pre")!.data.every((x) => x === 0));
  assert(differs(patched.logits!.data, run.logits!.data));
});

Deno.test("input validation: ragged batch, bad token, too long", () => {
  const { cfg, params } = gpt2;
  assertThrows(() => referenceForward(cfg, params, [[1, 2], [3]]), ModelError, "same length");
  assertThrows(() => referenceForward(cfg, params, [[1, 99]]), ModelError, "token 99");
  assertThrows(() => referenceForward(cfg, params, [Array(13).fill(1)]), ModelError, "exceed nCtx");
});
