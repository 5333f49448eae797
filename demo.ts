/**
 * `deno task demo`: an end-to-end check of saeflow on this machine's GPU.
 *
 * 1. Opens the WebGPU device and prints the adapter.
 * 2. Runs matmul in every layout with a fused epilogue and checks it against the plain-TS
 *    reference.
 * 3. Trains an SAE on a real (tiny) GPT-2's activations and shows its features
 *    (`demo_shakespeare.ts`).
 *
 * Exits non-zero when a check fails.
 * @module
 */

import { getGpu } from "./gpu/device.ts";
import { Tensor } from "./gpu/tensor.ts";
import { defaultMatmulTuningPath, matmul, matmulRef, tuneMatmul } from "./gpu/kernels/matmul.ts";
import { createRng } from "./sae/reference/rng.ts";
import { runShakespeareDemo } from "./demo_shakespeare.ts";

function randn(n: number, rng: { normal(): number }): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return out;
}

function maxRelError(actual: Float32Array, expected: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i]));
    if (!(err <= worst)) worst = err; // NaN counts as the worst error
  }
  return worst;
}

async function matmulCheck(): Promise<boolean> {
  const rng = createRng(7);
  const [m, k, n] = [256, 384, 512];
  const a = randn(m * k, rng), b = randn(k * n, rng), bias = randn(n, rng);
  let ok = true;
  for (const layout of ["A·B", "A·Bᵀ", "Aᵀ·B"] as const) {
    const transA = layout === "Aᵀ·B", transB = layout === "A·Bᵀ";
    const aData = transA ? transpose(a, m, k) : a;
    const bData = transB ? transpose(b, k, n) : b;
    using ta = Tensor.from(aData, transA ? [k, m] : [m, k]);
    using tb = Tensor.from(bData, transB ? [n, k] : [k, n]);
    using tbias = Tensor.from(bias, [n]);
    const t0 = performance.now();
    using c = matmul(ta, tb, { transA, transB, bias: tbias, activation: "gelu_tanh" });
    const got = (await c.toArray()) as Float32Array;
    const ms = performance.now() - t0;
    const want = matmulRef(aData, bData, m, k, n, {
      transA,
      transB,
      bias,
      activation: "gelu_tanh",
    });
    const err = maxRelError(got, want);
    const pass = err < 1e-4;
    ok &&= pass;
    console.log(
      `  matmul ${layout.padEnd(5)} ${m}×${k}×${n} + bias + GELU: max rel. error ${
        err.toExponential(2)
      } ${pass ? "ok" : "FAILED"} (${ms.toFixed(0)} ms incl. compile and readback)`,
    );
  }
  return ok;
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}

if (import.meta.main) {
  const gpu = await getGpu();
  console.log(
    `saeflow demo on ${gpu.info.description}${
      gpu.info.isFallbackAdapter ? " (software adapter)" : ""
    }; features: ${gpu.info.features.join(", ") || "none"}`,
  );
  console.log(
    `  limits: maxBufferSize ${gpu.maxBufferSize}, maxStorageBufferBindingSize ${gpu.maxBindingSize}`,
  );
  const t0 = performance.now();
  const tuned = await tuneMatmul(gpu, undefined, { cache: true });
  const when = tuned.every((r) => r.fromCache)
    ? `recorded ${tuned[0]?.measuredAt.slice(0, 10)} in ${defaultMatmulTuningPath()}`
    : `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  console.log(
    `  matmul variants chosen by measurement (${when}): ${
      tuned.map((r) => `${r.layout} → ${r.variant}`).join(", ")
    }`,
  );
  const ok = await matmulCheck();
  if (ok) {
    console.log("Training an SAE on a real model's activations:");
    await runShakespeareDemo(gpu);
  }
  gpu.destroy();
  if (!ok) {
    console.error("demo: a GPU result did not match the reference");
    Deno.exit(1);
  }
  console.log("demo: all checks passed");
}
