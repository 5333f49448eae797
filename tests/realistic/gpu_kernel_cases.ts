/**
 * The `gpu/kernels` families at the shapes an SAE step and an LM forward use, GPU against the
 * plain-TS reference of each: per-row top-k (k 16 / 64 / 200 / 1024, aux-k masks, rows wider than
 * the 16383-column radix chunk, batch thresholds), the batch K-th largest and BatchTopK mask
 * (16-64 radix chunks), the counting sort and scan (past the per-block entry budget and the
 * 1024-element scan chunk), the sparse gather/dot/scatter (and a latent with more entries than
 * one llvmpipe round), row/column/whole reductions past their chunk and block sizes, softmax over
 * a GPT-2 vocabulary row, layer/RMS norm at d_model 768, elementwise and broadcast ops, gradient
 * clipping, Adam, and matmul in every layout and variant at an SAE's encoder/decoder shapes.
 *
 * Exact kernels (top-k, sort, masks) are compared bit for bit; float sums with
 * |Δ| ≤ atol + rtol·|ref| (f32 GPU sums against float64-accumulating references).
 * @module
 */

import { readAll, Tensor } from "../../gpu/tensor.ts";
import { topkRows, topkRowsRef } from "../../gpu/kernels/topk.ts";
import {
  batchTopKMask,
  batchTopKMaskRef,
  decodeKth,
  kthLargest,
  kthLargestRef,
} from "../../gpu/kernels/kth_largest.ts";
import {
  CountingSort,
  countingSortRef,
  exclusiveScanU32,
} from "../../gpu/kernels/counting_sort.ts";
import {
  gatherRowsWeighted,
  gatherRowsWeightedRef,
  scatterAddRows,
  scatterAddRowsRef,
  scatterAddValues,
  scatterAddValuesRef,
  sparseDot,
  sparseDotRef,
} from "../../gpu/kernels/scatter.ts";
import { reduceAll, reduceCols, reduceRows } from "../../gpu/kernels/reduce.ts";
import {
  REDUCE_OPS,
  reduceAllRef,
  reduceColsRef,
  reduceRowsRef,
} from "../../gpu/kernels/reduce_ref.ts";
import { logSoftmax, softmax, softmaxRef } from "../../gpu/kernels/softmax.ts";
import { layerNorm, layerNormRef, rmsNorm } from "../../gpu/kernels/layernorm.ts";
import { axpy, unary } from "../../gpu/kernels/elementwise.ts";
import { binary } from "../../gpu/kernels/binary.ts";
import {
  axpyRef,
  BINARY_OPS,
  binaryRef,
  UNARY_OPS,
  unaryRef,
} from "../../gpu/kernels/elementwise_ref.ts";
import { clipGradNorm, clipGradNormRef } from "../../gpu/kernels/clip.ts";
import { adamRef, adamStep, createAdamScalars, writeAdamScalars } from "../../gpu/kernels/adam.ts";
import { matmul, MATMUL_VARIANTS, matmulRef } from "../../gpu/kernels/matmul/mod.ts";
import { close, exact, type RealisticCheck, uniform } from "./_check.ts";

/** Reads tensors back and disposes them. */
async function take(...ts: Tensor[]): Promise<(Float32Array | Int32Array | Uint32Array)[]> {
  try {
    return await readAll(ts);
  } finally {
    for (const t of ts) t.dispose();
  }
}

// ------------------------------------------------------------------------------------ top-k

interface TopkCase {
  rows: number;
  n: number;
  k: number;
  relu?: boolean;
  sort?: "rank" | "merge";
  /** Every other column allowed (aux-k over half of the latents dead). */
  halfMask?: boolean;
  seed: number;
}

const TOPK_CASES: TopkCase[] = [
  { rows: 128, n: 2048, k: 16, relu: true, seed: 1 },
  { rows: 128, n: 2048, k: 64, relu: true, sort: "merge", seed: 2 },
  { rows: 128, n: 2048, k: 200, seed: 3 },
  { rows: 128, n: 2048, k: 64, relu: true, halfMask: true, seed: 4 },
  // Rows wider than the 16383-column radix chunk.
  { rows: 6, n: 40000, k: 200, relu: true, seed: 5 },
  { rows: 4, n: 8192, k: 1024, sort: "merge", seed: 6 },
];

function topkCheck(c: TopkCase): RealisticCheck {
  const tag = `${c.rows}x${c.n} k ${c.k}${c.relu ? " relu" : ""}${c.sort ? ` ${c.sort}` : ""}${
    c.halfMask ? " half masked" : ""
  }`;
  return {
    name: `topk: ${tag}`,
    family: "topk",
    run: async (gpu) => {
      const x = uniform(c.rows * c.n, c.seed, -1, 1);
      const maskHost = c.halfMask ? Int32Array.from({ length: c.n }, (_, j) => j % 2) : null;
      const want = topkRowsRef(x, c.rows, c.n, c.k, {
        relu: c.relu,
        mask: maskHost ?? undefined,
      });
      using xt = Tensor.from(x, [c.rows, c.n], { gpu });
      using mask = maskHost ? Tensor.from(maskHost, [c.n], { gpu }) : null;
      const got = topkRows(xt, c.k, { relu: c.relu, sort: c.sort, mask: mask ?? undefined });
      const [values, indices] = await take(got.values, got.indices);
      exact(indices, want.indices, "indices");
      exact(values, want.values, "values");
      return {};
    },
  };
}

/** BatchTopK per-row lists: rows' top-kMax among the entries at or above the batch K-th. */
function thresholdCheck(rows: number, n: number, k: number, kMax: number): RealisticCheck {
  return {
    name: `topk: ${rows}x${n} batch threshold (K = ${k}·rows), lists of ${kMax}`,
    family: "topk",
    run: async (gpu) => {
      const x = uniform(rows * n, 7, -1, 1);
      const K = k * rows;
      const kth = kthLargestRef(x, K);
      const sel = batchTopKMaskRef(x, kth);
      // Unselected entries can never be taken: give them −∞ and drop them from the lists.
      const masked = Float32Array.from(x, (v, i) => (sel[i] !== 0 || v === 0 ? v : -Infinity));
      const want = topkRowsRef(masked, rows, n, kMax);
      want.indices.forEach((j, s) => {
        if (want.values[s] === -Infinity) [want.values[s], want.indices[s]] = [0, -1];
        else if (j < 0) want.values[s] = 0;
      });
      using xt = Tensor.from(x, [rows, n], { gpu });
      using kt = kthLargest(xt, K);
      const got = topkRows(xt, kMax, { threshold: kt });
      const [values, indices] = await take(got.values, got.indices);
      exact(indices, want.indices, "indices");
      exact(values, want.values, "values");
      return {};
    },
  };
}

function kthCheck(rows: number, n: number, k: number, relu: boolean): RealisticCheck {
  return {
    name: `kth_largest: ${rows}x${n}, K = ${k}·rows${relu ? ", relu mask" : ""}`,
    family: "kth_largest",
    run: async (gpu) => {
      const x = uniform(rows * n, 11 + k, -1, 1);
      const want = kthLargestRef(x, k * rows);
      const wantMask = batchTopKMaskRef(x, want, relu);
      using xt = Tensor.from(x, [rows, n], { gpu });
      const kt = kthLargest(xt, k * rows);
      const m = batchTopKMask(xt, kt, { relu });
      const [kr, mr] = await take(kt, m);
      const got = decodeKth(kr as Uint32Array);
      exact([got.index, got.key, got.value], [want.index, want.key, want.value], "kth");
      exact(mr, wantMask, "mask");
      return {};
    },
  };
}

// ------------------------------------------------------------------ sort, scan and scatters

/** Random distinct latents per row (a top-k's indices), a few slots −1 when `holes`. */
function topkIndices(rows: number, k: number, dSae: number, seed: number, holes = false) {
  const u = uniform(rows * k * 2, seed, 0, 1);
  const idx = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const used = new Set<number>();
    for (let s = 0; s < k; s++) {
      let j = Math.floor(u[(r * k + s) * 2] * dSae);
      while (used.has(j)) j = (j + 1) % dSae;
      used.add(j);
      idx[r * k + s] = holes && u[(r * k + s) * 2 + 1] < 0.05 ? -1 : j;
    }
  }
  return idx;
}

function scatterCheck(
  name: string,
  rows: number,
  k: number,
  d: number,
  dSae: number,
  idx: Int32Array,
  distinct: boolean,
): RealisticCheck {
  return {
    name: `scatter: ${name}`,
    family: "scatter",
    run: async (gpu) => {
      const o = { gpu };
      const W = uniform(dSae * d, 21, -0.5, 0.5), X = uniform(rows * d, 22);
      const vals = uniform(rows * k, 23, 0, 2), bias = uniform(d, 24);
      using Wt = Tensor.from(W, [dSae, d], o);
      using Xt = Tensor.from(X, [rows, d], o);
      using it = Tensor.from(idx, [rows, k], o);
      using vt = Tensor.from(vals, [rows, k], o);
      using bt = Tensor.from(bias, [d], o);
      using sort = new CountingSort(it, dSae, { distinctPerRow: distinct });
      const [g, dt, rw, vs, off, ord] = await readAll([
        gatherRowsWeighted(Wt, it, vt, { bias: bt }),
        sparseDot(Xt, Wt, it),
        scatterAddRows(sort, vt, Xt),
        scatterAddValues(sort, vt),
        sort.offsets,
        sort.order,
      ]);
      const ref = countingSortRef(idx, rows, k, dSae);
      exact(off, ref.offsets, "sort offsets");
      exact(ord.subarray(0, ref.order.length), ref.order, "sort order");
      const tol = [1e-5, 1e-4] as const;
      return {
        gather: close(g, gatherRowsWeightedRef(W, dSae, d, idx, vals, rows, k, bias), ...tol, "g"),
        dot: close(dt, sparseDotRef(X, W, idx, rows, k, d, dSae), ...tol, "sparseDot"),
        rows: close(rw, scatterAddRowsRef(idx, vals, X, rows, k, d, dSae), ...tol, "rows"),
        values: close(vs, scatterAddValuesRef(idx, vals, rows, k, dSae), ...tol, "values"),
      };
    },
  };
}

function scanCheck(n: number): RealisticCheck {
  return {
    name: `counting_sort: exclusive scan of ${n} counts`,
    family: "counting_sort",
    run: async (gpu) => {
      const c = Uint32Array.from(uniform(n, 31, 0, 50), Math.floor);
      const want = new Uint32Array(n + 1);
      for (let i = 0; i < n; i++) want[i + 1] = want[i] + c[i];
      using ct = Tensor.from(c, [n], { gpu });
      const out = Tensor.empty([n + 1], "u32", { gpu });
      exclusiveScanU32(ct, n, out);
      const [got] = await take(out);
      return { exact: exact(got, want, "scan") };
    },
  };
}

// ------------------------------------------------------------------------------- reductions

function reduceCheck(m: number, n: number): RealisticCheck {
  return {
    name: `reduce: rows, cols and all of ${m}x${n}`,
    family: "reduce",
    run: async (gpu) => {
      const x = uniform(m * n, 41 + m, -2, 2);
      using xt = Tensor.from(x, [m, n], { gpu });
      const err: Record<string, number> = {};
      for (const op of REDUCE_OPS) {
        const [r, c, a] = await take(
          reduceRows(op, xt),
          reduceCols(op, xt),
          reduceAll(op, xt.reshape([m * n])),
        );
        err[`${op}_rows`] = close(r, reduceRowsRef(op, x, m, n), 1e-4, 1e-5, `${op} rows`);
        err[`${op}_cols`] = close(c, reduceColsRef(op, x, m, n), 1e-4, 1e-5, `${op} cols`);
        err[`${op}_all`] = close(a, reduceAllRef(op, x), 1e-3, 1e-5, `${op} all`);
      }
      return err;
    },
  };
}

function softmaxCheck(m: number, n: number): RealisticCheck {
  return {
    name: `softmax: ${m} rows of ${n} (softmax, log-softmax)`,
    family: "softmax",
    run: async (gpu) => {
      const x = uniform(m * n, 51, -8, 8);
      using xt = Tensor.from(x, [m, n], { gpu });
      const [s, l] = await take(softmax(xt), logSoftmax(xt));
      return {
        softmax: close(s, softmaxRef(x, m, n), 1e-8, 1e-4, "softmax"),
        log_softmax: close(l, softmaxRef(x, m, n, { log: true }), 1e-5, 1e-5, "logSoftmax"),
      };
    },
  };
}

function normCheck(m: number, n: number): RealisticCheck {
  return {
    name: `layernorm: ${m}x${n} layer norm and RMS norm with weight and bias`,
    family: "layernorm",
    run: async (gpu) => {
      const x = uniform(m * n, 61, -3, 5), w = uniform(n, 62, 0.5, 1.5), b = uniform(n, 63);
      using xt = Tensor.from(x, [m, n], { gpu });
      using wt = Tensor.from(w, [n], { gpu });
      using bt = Tensor.from(b, [n], { gpu });
      const ln = layerNorm(xt, { weight: wt, bias: bt, scale: true });
      const rms = rmsNorm(xt, { weight: wt });
      const [y, sc, yr] = await take(ln.y, ln.scale!, rms.y);
      const want = layerNormRef(x, m, n, { weight: w, bias: b });
      const wantR = layerNormRef(x, m, n, { weight: w, rms: true });
      return {
        layer_norm: close(y, want.y, 1e-5, 1e-4, "layerNorm"),
        scale: close(sc, want.scale, 1e-6, 1e-5, "layerNorm scale"),
        rms_norm: close(yr, wantR.y, 1e-5, 1e-4, "rmsNorm"),
      };
    },
  };
}

function elementwiseCheck(m: number, n: number): RealisticCheck {
  return {
    name: `elementwise: every unary op, broadcast binary ops, axpy on ${m}x${n}`,
    family: "elementwise",
    run: async (gpu) => {
      const x = uniform(m * n, 71, -3, 3), pos = uniform(m * n, 72, 0.1, 4);
      const row = uniform(n, 73, 0.5, 2), col = uniform(m, 74, 0.5, 2);
      const o = { gpu };
      using xt = Tensor.from(x, [m, n], o);
      using pt = Tensor.from(pos, [m, n], o);
      using rt = Tensor.from(row, [n], o);
      using ct = Tensor.from(col, [m, 1], o);
      const err: Record<string, number> = {};
      for (const op of UNARY_OPS) {
        const input = op === "log" || op === "sqrt" ? pos : x;
        const [y] = await take(unary(op, op === "log" || op === "sqrt" ? pt : xt, { c: 0.7 }));
        err[op] = close(y, unaryRef(op, input, 0.7), 1e-5, 1e-5, op);
      }
      for (const op of BINARY_OPS) {
        const [yr, yc] = await take(binary(op, xt, rt), binary(op, xt, ct));
        err[`${op}_row`] = close(yr, binaryRef(op, x, [m, n], row, [n]).data, 1e-6, 1e-6, op);
        err[`${op}_col`] = close(yc, binaryRef(op, x, [m, n], col, [m, 1]).data, 1e-6, 1e-6, op);
      }
      using yt = Tensor.from(pos, [m, n], o);
      const [ax] = await readAll([axpy(-0.3, xt, yt)]);
      err.axpy = close(ax, axpyRef(-0.3, x, pos), 1e-6, 1e-6, "axpy");
      return err;
    },
  };
}

function clipAdamCheck(dIn: number, dSae: number): RealisticCheck {
  return {
    name: `clip + adam: an SAE's gradients (W_enc ${dIn}x${dSae}, b_enc, W_dec, b_dec)`,
    family: "optimizer",
    run: async (gpu) => {
      const sizes = [dIn * dSae, dSae, dSae * dIn, dIn];
      const grads = sizes.map((s, i) => uniform(s, 81 + i, -0.05, 0.05));
      const params = sizes.map((s, i) => uniform(s, 91 + i, -0.2, 0.2));
      const ms = sizes.map((s, i) => uniform(s, 101 + i, -0.01, 0.01));
      const vs = sizes.map((s, i) => uniform(s, 111 + i, 0, 1e-4));
      const o = { gpu };
      const gt = grads.map((g) => Tensor.from(g, [g.length], o));
      const pt = params.map((p) => Tensor.from(p, [p.length], o));
      const mt = ms.map((p) => Tensor.from(p, [p.length], o));
      const vt = vs.map((p) => Tensor.from(p, [p.length], o));
      using sc = createAdamScalars(gpu);
      try {
        const clip = clipGradNorm(gt, { maxNorm: 1, apply: false });
        writeAdamScalars(sc, { lr: 4e-4, step: 3 });
        for (let i = 0; i < sizes.length; i++) {
          adamStep(pt[i], gt[i], mt[i], vt[i], sc, { clipFactor: clip.factor });
        }
        const [norm, factor] = await take(clip.totalNorm, clip.factor);
        const got = await readAll([...pt, ...mt, ...vt]);
        const ref = clipGradNormRef(grads, 1);
        const err: Record<string, number> = {
          total_norm: close([norm[0]], [ref.totalNorm], 0, 1e-5, "total norm"),
          factor: close([factor[0]], [ref.factor], 0, 1e-5, "clip factor"),
        };
        for (let i = 0; i < sizes.length; i++) {
          adamRef(params[i], grads[i], ms[i], vs[i], { lr: 4e-4, step: 3 }, {
            clipFactor: ref.factor,
          });
          err[`param_${i}`] = close(got[i], params[i], 1e-7, 1e-5, `param ${i}`);
          err[`m_${i}`] = close(got[4 + i], ms[i], 1e-9, 1e-5, `m ${i}`);
          err[`v_${i}`] = close(got[8 + i], vs[i], 1e-12, 1e-5, `v ${i}`);
        }
        return err;
      } finally {
        for (const t of [...gt, ...pt, ...mt, ...vt]) t.dispose();
      }
    },
  };
}

// ----------------------------------------------------------------------------------- matmul

/** The products of one SAE step at batch B: encoder (x·W_enc), decoder (f·W_dec), ∂W_dec (fᵀ·g). */
function matmulCheck(B: number, dIn: number, dSae: number, variant?: string): RealisticCheck {
  const products = [
    { what: "encoder nn", m: B, k: dIn, n: dSae, transA: false, transB: false },
    { what: "decoder nn", m: B, k: dSae, n: dIn, transA: false, transB: false },
    { what: "grad x nt", m: B, k: dIn, n: dSae, transA: false, transB: true },
    { what: "grad W tn", m: dSae, k: B, n: dIn, transA: true, transB: false },
  ];
  return {
    name: `matmul: ${variant ?? "default variant"}, SAE products at ${B}x${dIn}x${dSae}`,
    family: "matmul",
    run: async (gpu) => {
      const err: Record<string, number> = {};
      for (const p of products) {
        const a = uniform(p.m * p.k, 121 + p.m, -1, 1), b = uniform(p.k * p.n, 131 + p.n, -1, 1);
        const aShape = p.transA ? [p.k, p.m] : [p.m, p.k];
        const bShape = p.transB ? [p.n, p.k] : [p.k, p.n];
        using at = Tensor.from(a, aShape, { gpu });
        using bt = Tensor.from(b, bShape, { gpu });
        const [c] = await take(matmul(at, bt, { transA: p.transA, transB: p.transB, variant }));
        const want = matmulRef(a, b, p.m, p.k, p.n, { transA: p.transA, transB: p.transB });
        // f32 sums of k products of size ≤ 1: |Δ| ≲ √k·2⁻²⁴·k, far below 1e-4·(1 + |ref|)·…
        err[p.what] = close(c, want, 1e-4 * Math.sqrt(p.k), 1e-5, `${p.what}`);
      }
      return err;
    },
  };
}

/** Every `gpu/kernels` check, in a fixed order. */
export const GPU_KERNEL_CHECKS: RealisticCheck[] = [
  ...TOPK_CASES.map(topkCheck),
  thresholdCheck(128, 2048, 32, 96),
  kthCheck(128, 2048, 64, true),
  kthCheck(256, 2048, 32, false),
  scatterCheck(
    "TopK backward shape: 512 rows, k 64, d 128, d_sae 2048 (distinct per row)",
    512,
    64,
    128,
    2048,
    topkIndices(512, 64, 2048, 141),
    true,
  ),
  scatterCheck(
    "aux-k shape with holes: 256 rows, k 200, d 64, d_sae 4096",
    256,
    200,
    64,
    4096,
    topkIndices(256, 200, 4096, 142, true),
    true,
  ),
  scatterCheck(
    "a latent with 40000 entries (past one llvmpipe round of 32767)",
    40000,
    1,
    16,
    3,
    Int32Array.from({ length: 40000 }, (_, i) => (i % 7 === 0 ? 2 : 0)),
    false,
  ),
  scanCheck(5000),
  scanCheck(1100000),
  reduceCheck(128, 2048),
  reduceCheck(1000, 768),
  softmaxCheck(16, 50257),
  normCheck(1024, 768),
  elementwiseCheck(128, 2048),
  clipAdamCheck(128, 2048),
  matmulCheck(128, 128, 2048),
  ...MATMUL_VARIANTS.map((v) => matmulCheck(64, 128, 1024, v.name)),
];
