import { assert, assertClose, assertEquals, assertThrows } from "../../assert.ts";
import { FiringStats, logFeatureSparsity } from "../../../sae/training/firing_stats.ts";
import { TrainingError } from "../../../sae/training/errors.ts";

// 3 rows × 4 features; feature 3 fires on every row, feature 1 never, feature 0 once (negative)
const ACTS = Float32Array.of(
  -0.5,
  0,
  0,
  1,
  0,
  0,
  2,
  1,
  0,
  0,
  3,
  1,
);

Deno.test("firing stats: counts, passes since fired, samples per step", () => {
  const stats = new FiringStats(4, 4);
  stats.update(ACTS, 3);
  assertEquals(stats.actFreqScores, Float32Array.of(1, 0, 2, 3)); // nonzero, incl. negative
  assertEquals(stats.nForwardPassesSinceFired, Float32Array.of(0, 1, 0, 0));
  assertEquals(stats.nFracActiveSamples, 3); // the 3 rows seen, not the configured 4
  for (let i = 0; i < 4; i++) stats.update(ACTS, 3);
  assertEquals(stats.nFracActiveSamples, 15); // 5 steps × 3 rows
  assertEquals(stats.nForwardPassesSinceFired, Float32Array.of(0, 5, 0, 0));
  stats.update(new Float32Array(12), 3);
  assertEquals(stats.nForwardPassesSinceFired, Float32Array.of(1, 6, 1, 1));
  assertClose(stats.meanPassesSinceFired(), 9 / 4, 0);
});

Deno.test("firing stats: dead mask is strictly greater than the window", () => {
  const stats = new FiringStats(4, 4);
  for (let i = 0; i < 3; i++) stats.update(ACTS, 3); // feature 1: 3 passes
  assertEquals(stats.deadMask(3), Uint8Array.of(0, 0, 0, 0));
  assertEquals(stats.deadMask(2), Uint8Array.of(0, 1, 0, 0));
  assertEquals(stats.deadCount(2), 1);
  const buf = new Uint8Array(4);
  assert(stats.deadMask(2, buf) === buf);
});

Deno.test("firing stats: sparsity, log sparsity, window reset keeps passes", () => {
  const stats = new FiringStats(4, 4);
  stats.update(ACTS, 3);
  stats.update(ACTS, 3);
  assertEquals(stats.featureSparsity(), Float32Array.of(2 / 6, 0, 4 / 6, 6 / 6));
  const logs = stats.logFeatureSparsity();
  assert(logs.every(Number.isFinite), "log10(0 + 1e-10) must be finite");
  assertClose(logs[1], -10, 1e-5);
  assertClose(logs[2], Math.log10(4 / 6), 1e-6);
  stats.resetWindow();
  assertEquals(stats.actFreqScores, new Float32Array(4));
  assertEquals(stats.nFracActiveSamples, 0);
  assertEquals(stats.nForwardPassesSinceFired, Float32Array.of(0, 2, 0, 0));
  assert(Number.isNaN(stats.featureSparsity()[0]), "0/0 before any step, like torch");
});

Deno.test("firing stats: counts path equals the dense path; NaN counts as firing", () => {
  const a = new FiringStats(4, 8), b = new FiringStats(4, 8);
  a.update(ACTS, 3);
  b.updateFromCounts([1, 0, 2, 3], 3);
  assertEquals(a.stateDict(), b.stateDict());
  const c = new FiringStats(2, 1);
  c.update(Float32Array.of(Number.NaN, 0), 1);
  assertEquals(c.actFreqScores, Float32Array.of(1, 0));
  assertThrows(() => a.updateFromCounts([1, 2]), TrainingError, "expected dSae = 4");
  assertThrows(() => a.update(new Float32Array(5), 2), TrainingError, "nRows·dSae");
});

Deno.test("firing stats: state dict round trip copies and validates", () => {
  const a = new FiringStats(4, 4);
  a.update(ACTS, 3);
  const state = a.stateDict();
  state.actFreqScores[0] = 99; // a copy: must not affect `a`
  assertEquals(a.actFreqScores[0], 1);
  const b = new FiringStats(4, 4);
  b.loadStateDict(a.stateDict());
  b.update(ACTS, 3);
  a.update(ACTS, 3);
  assertEquals(b.stateDict(), a.stateDict());
  assertThrows(
    () => new FiringStats(5, 4).loadStateDict(a.stateDict()),
    TrainingError,
    "expected dSae = 5",
  );
});

Deno.test("log feature sparsity: float32 values and aliasing", () => {
  const s = Float32Array.of(0, 1, 1e-3);
  const out = logFeatureSparsity(s);
  assertEquals(out[1], Math.fround(Math.log10(Math.fround(1 + Math.fround(1e-10)))));
  assertClose(out[2], -3, 1e-6);
  assert(logFeatureSparsity(s, s) === s);
});
