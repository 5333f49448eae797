// The language-model kernels and their plain-TS references run through the same case tables,
// each checked against a naive float64 oracle written here (or hand-computed values). Window
// paths are exercised by shrinking this process's maxBindingSize. Tolerance: 1e-5 abs + 1e-5 rel
// unless stated (float32 GPU arithmetic vs float64 oracles on O(1) values).
import { Tensor } from "../../../gpu/tensor.ts";
import { type ActFn, activation, lmCrossEntropyLoss, rotaryTables } from "../../../model/mod.ts";
import { defineModelConfig } from "../../../model/config.ts";
import { applyRotary } from "../../../model/reference/ops.ts";
import { linear, linearRef, prepareLinear } from "../../../model/gpu/kernels/linear.ts";
import { norm, normRef } from "../../../model/gpu/kernels/norm.ts";
import {
  attnFused,
  attnScores,
  attnZ,
  setFusedQueryBlock,
  softmaxMasked,
} from "../../../model/gpu/kernels/attention.ts";
import { rotary } from "../../../model/gpu/kernels/rotary.ts";
import {
  embedGather,
  embedRef,
  posBroadcast,
  prepareEmbed,
} from "../../../model/gpu/kernels/embed.ts";
import {
  applyAct,
  gatedCombine,
  headResult,
  sumHeads,
} from "../../../model/gpu/kernels/pointwise.ts";
import { lmLossPerToken } from "../../../model/gpu/kernels/loss.ts";
import { assertAllClose, assertClose, assertEquals } from "../../assert.ts";
import { mulberry32 as rng } from "../../../util/rng.ts";
import { gpu } from "./_helpers.ts";

const TOL: [number, number] = [1e-5, 1e-5];
const r = rng(5);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => s * (2 * r() - 1));

/** Runs `fn` with this process's device pretending to have a small binding limit. */
async function withBindingLimit<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  const real = gpu.maxBindingSize;
  Object.defineProperty(gpu, "maxBindingSize", { value: bytes, configurable: true });
  try {
    return await fn();
  } finally {
    Object.defineProperty(gpu, "maxBindingSize", { value: real, configurable: true });
  }
}

// ---------------------------------------------------------------- linear
interface LinCase {
  rows: number;
  K: number;
  N: number;
  act: ActFn | "none";
  gated?: boolean;
  bias?: boolean;
  softcap?: number;
  limit?: number;
}
const LIN_CASES: LinCase[] = [
  { rows: 1, K: 4, N: 3, act: "none", bias: true },
  { rows: 7, K: 16, N: 23, act: "gelu_new", bias: true },
  { rows: 5, K: 7, N: 9, act: "gelu", bias: true },
  { rows: 9, K: 12, N: 33, act: "silu", gated: true, bias: true },
  { rows: 6, K: 8, N: 17, act: "gelu_pytorch_tanh", gated: true, bias: true },
  { rows: 4, K: 8, N: 10, act: "relu", softcap: 0.7 },
  { rows: 3, K: 8, N: 5, act: "gelu_fast", bias: true, softcap: 2 },
  // Operands larger than one binding (windows of the shared matmul, row windows of the epilogue).
  { rows: 300, K: 32, N: 100, act: "none", bias: true, limit: 8192 },
  { rows: 70, K: 24, N: 40, act: "silu", gated: true, bias: true, limit: 4096 },
];

function linearOracle(
  c: LinCase,
  x: Float32Array,
  W: Float32Array,
  b: Float32Array | null,
  W2: Float32Array | null,
) {
  const act = c.act === "none" ? (v: number) => v : activation(c.act);
  const out = new Float64Array(c.rows * c.N);
  for (let i = 0; i < c.rows; i++) {
    for (let n = 0; n < c.N; n++) {
      let a = 0, g = 0;
      for (let k = 0; k < c.K; k++) {
        a += x[i * c.K + k] * W[k * c.N + n];
        if (W2) g += x[i * c.K + k] * W2[k * c.N + n];
      }
      let v = W2 ? act(a) * g + (b ? b[n] : 0) : act(a + (b ? b[n] : 0));
      if (c.softcap) v = c.softcap * Math.tanh(v / c.softcap);
      out[i * c.N + n] = v;
    }
  }
  return out;
}

Deno.test("lm kernels: linear x·W + b with activation / gated / softcap epilogues (GPU and ref)", async () => {
  // Hand-computed: [1, 2] · [[1, 0, 2], [0, 1, 1]] + [0, 1, 0] = [1, 3, 4].
  const hand = { W: Float32Array.of(1, 0, 2, 0, 1, 1), bias: Float32Array.of(0, 1, 0) };
  assertAllClose(linearRef(Float32Array.of(1, 2), 1, 2, 3, hand), [1, 3, 4]);
  {
    const w = prepareLinear(gpu, hand, 2, 3);
    using x = Tensor.from([1, 2], [1, 2]);
    using y = linear(x, w);
    assertAllClose(await y.toArray(), [1, 3, 4]);
  }
  for (const c of LIN_CASES) {
    const x = rand(c.rows * c.K), W = rand(c.K * c.N, 0.5);
    const bias = c.bias ? rand(c.N) : null, W2 = c.gated ? rand(c.K * c.N, 0.5) : null;
    const want = linearOracle(c, x, W, bias, W2);
    const label = JSON.stringify(c);
    assertAllClose(linearRef(x, c.rows, c.K, c.N, { W, bias, W2 }, c), want, ...TOL, label);
    const got = await withBindingLimit(c.limit ?? gpu.maxBindingSize, async () => {
      const w = prepareLinear(gpu, { W, bias, W2 }, c.K, c.N);
      using xt = Tensor.from(x, [c.rows, c.K]);
      using y = linear(xt, w, { act: c.act, softcap: c.softcap });
      return await y.toArray();
    });
    assertAllClose(got, want, ...TOL, label);
  }
});

// ---------------------------------------------------------------- norms
Deno.test("lm kernels: LN / LNPre / RMS / RMSPre outputs and hook_scale (GPU and ref)", async () => {
  // Hand-computed: x = [1, 3], LN with w = 1, b = 0: mean 2, scale √(1 + eps), out ∓1/scale.
  const eps = 1e-5, s = Math.sqrt(1 + eps);
  const hand = normRef(
    Float32Array.of(1, 3),
    2,
    "LN",
    eps,
    Float32Array.of(1, 1),
    Float32Array.of(0, 0),
  );
  assertAllClose(hand.out, [-1 / s, 1 / s]);
  assertAllClose(hand.scale, [s]);
  for (const kind of ["LN", "LNPre", "RMS", "RMSPre"] as const) {
    for (const [rows, n] of [[3, 5], [4, 130]]) {
      const x = rand(rows * n, 3), w = rand(n), b = rand(n);
      // Oracle.
      const wantOut = new Float64Array(rows * n), wantScale = new Float64Array(rows);
      for (let i = 0; i < rows; i++) {
        const row = Array.from(x.subarray(i * n, (i + 1) * n));
        const mean = kind.startsWith("LN") ? row.reduce((a, v) => a + v, 0) / n : 0;
        const sc = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / n + eps);
        wantScale[i] = sc;
        row.forEach((v, j) => {
          const z = (v - mean) / sc;
          wantOut[i * n + j] = kind === "LN" ? z * w[j] + b[j] : kind === "RMS" ? z * w[j] : z;
        });
      }
      const ref = normRef(x, n, kind, eps, w, b);
      assertAllClose(ref.out, wantOut, ...TOL, kind);
      assertAllClose(ref.scale, wantScale, ...TOL, kind);
      using xt = Tensor.from(x, [rows, n]);
      using wt = Tensor.from(w);
      using bt = Tensor.from(b);
      const res = norm(xt, kind, eps, { w: wt, b: bt, wantScale: true });
      assertAllClose(await res.out.toArray(), wantOut, ...TOL, `${kind} gpu`);
      assertAllClose(await res.scale!.toArray(), wantScale, ...TOL, `${kind} gpu scale`);
      assertEquals([...res.scale!.shape], [rows, 1]);
      // A replaced scale (doubled) halves the normalised part.
      using doubled = Tensor.from(Float32Array.from(wantScale, (v) => 2 * v), [rows, 1]);
      using viaIn = norm(xt, kind, eps, { w: wt, b: bt, scaleIn: doubled }).out;
      const got = await viaIn.toArray();
      for (let i = 0; i < rows * n; i++) {
        const j = i % n;
        const half = kind === "LN" ? (wantOut[i] - b[j]) / 2 + b[j] : wantOut[i] / 2;
        assertClose(got[i], half, 1e-5, 1e-5);
      }
      res.out.dispose();
      res.scale!.dispose();
    }
  }
});

// ---------------------------------------------------------------- attention
function attnOracle(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  B: number,
  P: number,
  H: number,
  Hkv: number,
  d: number,
  scale: number,
  cap: number,
  window: number | null,
) {
  const scores = new Float64Array(B * H * P * P), pattern = new Float64Array(B * H * P * P);
  const z = new Float64Array(B * P * H * d);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let i = 0; i < P; i++) {
        const o = ((b * H + h) * P + i) * P;
        for (let j = 0; j < P; j++) {
          if (j > i || (window !== null && i - j >= window)) {
            scores[o + j] = -Infinity;
            continue;
          }
          let s = 0;
          for (let c = 0; c < d; c++) {
            s += q[((b * P + i) * H + h) * d + c] * k[((b * P + j) * Hkv + hk) * d + c];
          }
          s /= scale;
          if (cap > 0) s = cap * Math.tanh(s / cap);
          scores[o + j] = s;
        }
        const m = Math.max(...scores.subarray(o, o + P));
        let sum = 0;
        for (let j = 0; j < P; j++) sum += Math.exp(scores[o + j] - m);
        for (let j = 0; j < P; j++) pattern[o + j] = Math.exp(scores[o + j] - m) / sum;
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let j = 0; j < P; j++) acc += pattern[o + j] * v[((b * P + j) * Hkv + hk) * d + c];
          z[((b * P + i) * H + h) * d + c] = acc;
        }
      }
    }
  }
  return { scores, pattern, z };
}

const ATTN_CASES = [
  { B: 1, P: 3, H: 1, Hkv: 1, d: 2, scale: 1, softcap: 0, window: null },
  { B: 2, P: 7, H: 4, Hkv: 2, d: 8, scale: Math.sqrt(8), softcap: 0, window: null },
  { B: 1, P: 9, H: 2, Hkv: 1, d: 5, scale: 2, softcap: 1.5, window: 3 },
  { B: 2, P: 6, H: 3, Hkv: 3, d: 4, scale: 2, softcap: 0, window: 1 },
];

Deno.test("lm kernels: attention scores / masked softmax / z, and the fused kernel", async () => {
  for (const a of ATTN_CASES) {
    const q = rand(a.B * a.P * a.H * a.d, 2), k = rand(a.B * a.P * a.Hkv * a.d, 2);
    const v = rand(a.B * a.P * a.Hkv * a.d);
    const want = attnOracle(q, k, v, a.B, a.P, a.H, a.Hkv, a.d, a.scale, a.softcap, a.window);
    using qt = Tensor.from(q, [a.B, a.P, a.H, a.d]);
    using kt = Tensor.from(k, [a.B, a.P, a.Hkv, a.d]);
    using vt = Tensor.from(v, [a.B, a.P, a.Hkv, a.d]);
    using scores = attnScores(qt, kt, a);
    using pattern = softmaxMasked(scores);
    using z = attnZ(pattern, vt, a);
    // The fused kernel's variants: 1, 3 or 4 queries per invocation (P not a multiple of 3/4).
    for (const qb of [1, 3, 4]) {
      setFusedQueryBlock(qb);
      using fused = attnFused(qt, kt, vt, a);
      assertAllClose(await fused.toArray(), want.z, ...TOL, `fused/${qb} ${JSON.stringify(a)}`);
    }
    setFusedQueryBlock(null);
    const s = await scores.toArray();
    want.scores.forEach((w, i) => {
      if (w === -Infinity) assertEquals(s[i], -Infinity, "masked score is −∞");
      else assertClose(s[i], w, ...TOL);
    });
    assertAllClose(await pattern.toArray(), want.pattern, ...TOL, JSON.stringify(a));
    assertAllClose(await z.toArray(), want.z, ...TOL, JSON.stringify(a));
  }
  // Hand case: all-masked row → zeros; P = 1 → pattern 1.
  using allMasked = Tensor.from(Float32Array.of(-Infinity, -Infinity, 0.5, -Infinity), [2, 2]);
  using p = softmaxMasked(allMasked);
  assertAllClose(await p.toArray(), [0, 0, 1, 0]);
});

// ---------------------------------------------------------------- rotary, embedding, pointwise, loss
Deno.test("lm kernels: rotary (half-split and adjacent pairs, partial) vs ops.applyRotary", async () => {
  // Hand case: d = 2, position 1, base 1 → angle 1 rad: [1, 0] → [cos 1, sin 1].
  const cfg1 = defineModelConfig({
    nLayers: 1,
    dModel: 2,
    nHeads: 1,
    dVocab: 2,
    nCtx: 4,
    actFn: "relu",
    positionalEmbeddingType: "rotary",
    rotaryBase: 1,
  });
  const t1 = rotaryTables(cfg1, 2);
  using sin1 = Tensor.from(t1.sin, [2, 2]);
  using cos1 = Tensor.from(t1.cos, [2, 2]);
  using x1 = Tensor.from(Float32Array.of(1, 0, 1, 0), [1, 2, 1, 2]);
  using y1 = rotary(x1, sin1, cos1, 2, false);
  assertAllClose((await y1.toArray()).subarray(2), [Math.cos(1), Math.sin(1)], 1e-6);
  for (const adjacent of [false, true]) {
    const cfg = defineModelConfig({
      nLayers: 1,
      dModel: 24,
      nHeads: 2,
      dVocab: 5,
      nCtx: 16,
      actFn: "relu",
      positionalEmbeddingType: "rotary",
      rotaryDim: 8,
      rotaryAdjacentPairs: adjacent,
    });
    const B = 2, P = 5, nH = 3, d = 12;
    const tables = rotaryTables(cfg, P + 3);
    const x = rand(B * P * nH * d);
    using sin = Tensor.from(tables.sin, [P + 3, 8]);
    using cos = Tensor.from(tables.cos, [P + 3, 8]);
    using xt = Tensor.from(x, [B, P, nH, d]);
    using y = rotary(xt, sin, cos, 8, adjacent);
    assertAllClose(await y.toArray(), applyRotary(x, B, P, nH, d, tables, adjacent), ...TOL);
  }
});

Deno.test("lm kernels: embedding gather (+ positions, windows of W_E) and pos broadcast", async () => {
  const V = 50, D = 8, toks = [[3, 49, 0], [7, 7, 12]];
  const WE = rand(V * D), Wpos = rand(4 * D);
  using tok = Tensor.from(Int32Array.from(toks.flat()), [2, 3]);
  using pos = Tensor.from(Wpos, [4, D]);
  using pb = posBroadcast(pos, 2, 3);
  const rows3 = Wpos.subarray(0, 3 * D);
  assertAllClose(await pb.toArray(), [...rows3, ...rows3], 0);
  for (const limit of [gpu.maxBindingSize, 512]) {
    await withBindingLimit(limit, async () => {
      const table = prepareEmbed(gpu, WE, V, D);
      assertEquals(table.windows.length, limit === 512 ? 4 : 1);
      using e = embedGather(tok, table, null);
      using ep = embedGather(tok, table, pos);
      assertAllClose(await e.toArray(), embedRef(toks, WE, D, null), 0);
      assertAllClose(await ep.toArray(), embedRef(toks, WE, D, Wpos), ...TOL);
      // Hand check: row of token 49 is W_E's last row.
      assertAllClose((await e.toArray()).subarray(D, 2 * D), WE.subarray(49 * D), 0);
      for (const w of table.windows) w.w.dispose();
    });
  }
});

Deno.test("lm kernels: activation, gated combine, per-head result and head sum", async () => {
  const x = rand(40, 3), up = rand(40), b = rand(8);
  using xt = Tensor.from(x, [5, 8]);
  using ut = Tensor.from(up, [5, 8]);
  using bt = Tensor.from(b);
  for (const act of ["gelu_new", "gelu", "gelu_fast", "silu", "relu"] as const) {
    const f = activation(act);
    using y = applyAct(xt, act);
    assertAllClose(await y.toArray(), Array.from(x, f), ...TOL, act);
    using g = gatedCombine(xt, ut, bt, act);
    assertAllClose(
      await g.toArray(),
      Array.from(x, (v, i) => f(v) * up[i] + b[i % 8]),
      ...TOL,
      act,
    );
  }
  // hook_result: z [1,2,H=2,d=3] · W_O [2,3,D=4]; sum over heads + b_O.
  const z = rand(12), WO = rand(24), bO = rand(4);
  using zt = Tensor.from(z, [1, 2, 2, 3]);
  using wt = Tensor.from(WO, [2, 3, 4]);
  using bo = Tensor.from(bO);
  using res = headResult(zt, wt);
  using sum = sumHeads(res, bo);
  const want = new Float64Array(16), total = new Float64Array(8);
  for (let p = 0; p < 2; p++) {
    for (let h = 0; h < 2; h++) {
      for (let c = 0; c < 4; c++) {
        let acc = 0;
        for (let e = 0; e < 3; e++) acc += z[(p * 2 + h) * 3 + e] * WO[(h * 3 + e) * 4 + c];
        want[(p * 2 + h) * 4 + c] = acc;
        total[p * 4 + c] += acc;
      }
    }
    for (let c = 0; c < 4; c++) total[p * 4 + c] += bO[c];
  }
  assertAllClose(await res.toArray(), want, ...TOL);
  assertAllClose(await sum.toArray(), total, ...TOL);
});

Deno.test("lm kernels: per-token next-token loss (windows of logits) vs lmCrossEntropyLoss", async () => {
  // Hand case: uniform logits over V = 4 → every loss is ln 4.
  using zeros = Tensor.zeros([1, 3, 4]);
  using t0 = Tensor.from(Int32Array.of(0, 3, 1), [1, 3]);
  using l0 = lmLossPerToken(zeros, t0);
  assertAllClose(await l0.toArray(), [Math.log(4), Math.log(4)], 1e-6);
  const B = 3, P = 5, V = 64;
  const logits = rand(B * P * V, 4), toks = [[1, 2, 3, 4, 5], [63, 0, 0, 9, 1], [7, 8, 9, 10, 11]];
  using lt = Tensor.from(logits, [B, P, V]);
  using tt = Tensor.from(Int32Array.from(toks.flat()), [B, P]);
  const want = lmCrossEntropyLoss({ data: logits, shape: [B, P, V] }, toks, true);
  for (const limit of [gpu.maxBindingSize, 1024]) {
    await withBindingLimit(limit, async () => {
      using l = lmLossPerToken(lt, tt);
      assertEquals([...l.shape], [B, P - 1]);
      assertAllClose(await l.toArray(), want.data, ...TOL);
    });
  }
});
