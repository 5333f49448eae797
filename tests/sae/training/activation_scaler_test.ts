import {
  assert,
  assertAllClose,
  assertClose,
  assertEquals,
  assertRejects,
  assertThrows,
} from "../../assert.ts";
import {
  ActivationScaler,
  estimateNormScalingFactor,
  meanNormOverBatches,
  meanRowNorm,
} from "../../../sae/training/activation_scaler.ts";
import { TrainingError } from "../../../sae/training/errors.ts";

Deno.test("scaler: mean norm of batches with norms 5, 10, 0, 1, 2 is 3.6", async () => {
  const batches = [[3, 4], [6, 8], [0, 0], [1, 0], [0, 2]].map((r) => Float32Array.from(r));
  assertClose(await meanNormOverBatches(batches, 2, 5), 3.6, 1e-12);
});

Deno.test("scaler: d_in 64, all entries 2 → factor 0.5", async () => {
  function* provider() {
    while (true) yield new Float32Array(10 * 64).fill(2);
  }
  assertEquals(await estimateNormScalingFactor(provider(), 64, 10), 0.5);
  const scaler = new ActivationScaler();
  assertEquals(scaler.scalingFactor, null);
  await scaler.estimateScalingFactor(64, provider(), 3);
  assertEquals(scaler.scalingFactor, 0.5);
});

Deno.test("scaler: estimation consumes exactly n batches and leaves the source open", async () => {
  async function* provider() {
    for (let i = 1; i <= 5; i++) yield { acts: new Float32Array(4).fill(i), nRows: 2 };
  }
  const gen = provider();
  // rows of width 2 filled with i have norm i·√2
  assertClose(await meanNormOverBatches(gen, 2, 2), 1.5 * Math.SQRT2, 1e-12);
  const next = await gen.next();
  assert(!next.done && next.value.acts[0] === 3, "third batch is still there for training");
  await assertRejects(() => meanNormOverBatches(gen, 2, 5), TrainingError, "got 2 batches");
  await assertRejects(
    () => estimateNormScalingFactor([new Float32Array(4)], 2, 1),
    TrainingError,
    "expected a finite value > 0",
  );
});

Deno.test("scaler: meanRowNorm uses only the first nRows rows and validates shapes", () => {
  assertEquals(meanRowNorm(Float32Array.of(3, 4, 6, 8, 100, 100), 2, 2), 7.5);
  assertThrows(() => meanRowNorm(new Float32Array(3), 2, 2), TrainingError, "nRows·dIn");
});

Deno.test("scaler: scale/unscale, identity without factor, in-place, round trip", () => {
  const x = Float32Array.of(-1, 2, -3, 4);
  assertEquals(new ActivationScaler().scale(x), x);
  assert(new ActivationScaler().unscale(x) === x);
  const s = new ActivationScaler(3);
  assertEquals(s.scale(x), Float32Array.of(-3, 6, -9, 12));
  assertEquals(s.unscale(Float32Array.of(-3, 6, -9, 12)), x);
  for (const factor of [0.5, 1, 1.5, 2, 10]) {
    const r = new ActivationScaler(factor);
    const data = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 7);
    assertAllClose(r.unscale(r.scale(data)), data, 0, 1e-6);
  }
  const inPlace = Float32Array.of(1, 2);
  assert(s.scale(inPlace, inPlace) === inPlace);
  assertEquals(inPlace, Float32Array.of(3, 6));
  assertEquals(s.scale(new Float32Array(3)), new Float32Array(3));
  assertThrows(() => s.scale(x, new Float32Array(2)), TrainingError, "out has 2");
});

Deno.test("scaler: float32 semantics (factor rounded to f32, one rounding per element)", () => {
  const s = new ActivationScaler(0.1);
  const y = s.scale(Float32Array.of(3));
  assertEquals(y[0], Math.fround(3 * Math.fround(0.1)));
});

Deno.test("scaler: JSON round trip and validation", () => {
  assertEquals(new ActivationScaler(0.25).toJSON(), { scaling_factor: 0.25 });
  assertEquals(ActivationScaler.fromJSON({ scaling_factor: null }).scalingFactor, null);
  assertEquals(
    ActivationScaler.fromJSON(JSON.parse(JSON.stringify(new ActivationScaler(1.75)))).scalingFactor,
    1.75,
  );
  assertThrows(
    () => ActivationScaler.fromJSON({ scaling_factor: "x" }),
    TrainingError,
    "scaling_factor",
  );
  assertThrows(() => ActivationScaler.fromJSON({}), TrainingError, "scaling_factor");
});
