import { assertAllClose, assertClose, assertEquals, assertThrows } from "../../assert.ts";
import {
  CoefficientScheduler,
  createLrScheduler,
  type LrSchedulerOptions,
} from "../../../sae/training/schedulers.ts";
import { TrainingError } from "../../../sae/training/errors.ts";

/** The lr before the first step followed by the lr after each of `n` steps. */
function run(options: LrSchedulerOptions, n: number): number[] {
  const s = createLrScheduler(options);
  const out = [s.lr];
  for (let i = 0; i < n; i++) out.push(s.step());
  return out;
}

const cosine = (e: number, tMax: number, base: number, etaMin: number) =>
  etaMin + (base - etaMin) * (1 + Math.cos(Math.PI * e / tMax)) / 2;

Deno.test("lr scheduler: unknown name throws (name lowercased like SAELens)", () => {
  assertThrows(
    () => createLrScheduler({ lr: 0.1, lrSchedulerName: "Unknown", totalSteps: 10, lrEnd: 0 }),
    TrainingError,
    "Unsupported scheduler: unknown",
  );
});

Deno.test("lr scheduler: constant stays at lr", () => {
  assertEquals(run({ lr: 0.1, lrSchedulerName: "constant", totalSteps: 4, lrEnd: 0 }, 3), [
    0.1,
    0.1,
    0.1,
    0.1,
  ]);
});

Deno.test("lr scheduler: constant with warm-up 2 → 0.05, 0.1, 0.1…", () => {
  const lrs = run({ lr: 0.1, lrWarmUpSteps: 2, totalSteps: 4, lrEnd: 0 }, 4);
  assertEquals(lrs, [0.05, 0.1, 0.1, 0.1, 0.1]);
});

Deno.test("lr scheduler: constant + warm-up 2 + decay 4 over 6 steps", () => {
  const lrs = run({ lr: 0.1, lrWarmUpSteps: 2, lrDecaySteps: 4, totalSteps: 6, lrEnd: 0 }, 7);
  assertEquals(lrs.slice(0, 3), [0.05, 0.1, 0.1]);
  assertAllClose(lrs.slice(3, 6), [0.075, 0.05, 0.025], 1e-15);
  assertEquals(lrs.slice(6), [0.0, 0.0]); // exactly 0, and stays there past the end
});

Deno.test("lr scheduler: decay with lrEnd 0 throws unless constant", () => {
  assertThrows(
    () =>
      createLrScheduler({
        lr: 0.1,
        lrSchedulerName: "cosineannealing",
        lrEnd: 0,
        lrDecaySteps: 2,
        totalSteps: 6,
      }),
    TrainingError,
    "Cannot have decay_steps with lr_end=0.0",
  );
  // constant replaces lr_end by lr before the check
  createLrScheduler({ lr: 0.1, lrEnd: 0, lrDecaySteps: 2, totalSteps: 6 });
});

Deno.test("lr scheduler: decay with lrEnd > lr is rejected like torch's LinearLR", () => {
  assertThrows(
    () =>
      createLrScheduler({
        lr: 0.1,
        lrSchedulerName: "cosineannealing",
        lrEnd: 0.2,
        lrDecaySteps: 2,
        totalSteps: 6,
      }),
    TrainingError,
    "start factor",
  );
});

Deno.test("lr scheduler: cosine + warm-up 2 + decay 2 over 8 steps, lrEnd 0.01", () => {
  const lrs = run({
    lr: 0.1,
    lrSchedulerName: "CosineAnnealing",
    lrWarmUpSteps: 2,
    lrDecaySteps: 2,
    totalSteps: 8,
    lrEnd: 0.01,
  }, 8);
  assertEquals(lrs.slice(0, 3), [0.05, 0.1, 0.1]);
  // CosineAnnealingLR(T_max 4, eta_min 0.01) epochs 1..3 (torch's chained form, ≈ closed form)
  assertAllClose(lrs.slice(3, 6), [1, 2, 3].map((e) => cosine(e, 4, 0.1, 0.01)), 1e-15);
  assertAllClose(lrs.slice(3, 6), [0.08681980515339464, 0.055, 0.023180194846605363], 1e-15);
  assertEquals(lrs[6], 0.01); // decay starts exactly at lr_end (closed form at the milestone)
  assertClose(lrs[7], 0.005, 1e-15);
  assertClose(lrs[8], 0.0, 1e-15);
});

Deno.test("lr scheduler: cosine without warm-up follows torch past T_max", () => {
  // default lrEnd = lr/10; stepping past T_max exercises torch's restart branch
  const lrs = run({ lr: 0.1, lrSchedulerName: "cosineannealing", totalSteps: 4 }, 12);
  assertEquals(lrs[0], 0.1);
  assertAllClose(lrs, lrs.map((_, e) => cosine(e, 4, 0.1, 0.01)), 1e-12);
  assertClose(lrs[4], 0.01, 1e-15);
  assertClose(lrs[8], 0.1, 1e-12);
});

Deno.test("lr scheduler: warm restarts with 2 cycles over 8 steps", () => {
  const lrs = run({
    lr: 0.1,
    lrSchedulerName: "cosineannealingwarmrestarts",
    totalSteps: 8,
    lrEnd: 0.05,
    nRestartCycles: 2,
  }, 9);
  const cycle = [0, 1, 2, 3].map((t) => cosine(t, 4, 0.1, 0.05));
  assertAllClose(lrs, [...cycle, ...cycle, 0.1, 0.5 * (0.1 + 0.05) + 0.025 * Math.SQRT1_2], 1e-15);
  assertThrows(
    () =>
      createLrScheduler({
        lr: 0.1,
        lrSchedulerName: "cosineannealingwarmrestarts",
        totalSteps: 3,
        nRestartCycles: 4,
      }),
    TrainingError,
    "T_0",
  );
});

Deno.test("lr scheduler: warm-up of 1 step starts at lr", () => {
  const lrs = run(
    { lr: 0.1, lrWarmUpSteps: 1, lrSchedulerName: "cosineannealing", totalSteps: 5 },
    4,
  );
  assertEquals(lrs[0], 0.1);
  assertAllClose(lrs.slice(1), [0, 1, 2, 3].map((e) => cosine(e, 4, 0.1, 0.01)), 1e-15);
});

Deno.test("lr scheduler: state dict round trip resumes bit-exactly", () => {
  const options: LrSchedulerOptions = {
    lr: 3e-4,
    lrSchedulerName: "cosineannealingwarmrestarts",
    lrWarmUpSteps: 3,
    lrDecaySteps: 3,
    totalSteps: 20,
    nRestartCycles: 2,
  };
  for (const name of ["constant", "cosineannealing", "cosineannealingwarmrestarts"]) {
    const a = createLrScheduler({ ...options, lrSchedulerName: name });
    for (let i = 0; i < 9; i++) a.step();
    const state = JSON.parse(JSON.stringify(a.stateDict()));
    const b = createLrScheduler({ ...options, lrSchedulerName: name });
    b.loadStateDict(state);
    assertEquals(b.lr, a.lr, name);
    for (let i = 0; i < 14; i++) assertEquals(b.step(), a.step(), `${name} step ${i}`);
  }
  const noWarmUp = createLrScheduler({ ...options, lrWarmUpSteps: 0 });
  assertThrows(
    () => noWarmUp.loadStateDict(createLrScheduler(options).stateDict()),
    TrainingError,
    "sub-schedulers",
  );
});

Deno.test("coefficient scheduler: warm-up starts at 0 and reaches final after W steps", () => {
  const c = new CoefficientScheduler(8, 4);
  assertEquals([c.value, c.step(), c.step(), c.step(), c.step(), c.step()], [0, 2, 4, 6, 8, 8]);
  assertEquals(c.stateDict(), { currentStep: 5 });
  const none = new CoefficientScheduler(5);
  assertEquals([none.value, none.step(), none.step()], [5, 5, 5]);
});

Deno.test("coefficient scheduler: load restores the step and the matching value", () => {
  for (const t of [0, 1, 3, 4, 9]) {
    const ref = new CoefficientScheduler(1.5, 4);
    for (let i = 0; i < t; i++) ref.step();
    const loaded = new CoefficientScheduler(1.5, 4);
    loaded.loadStateDict(ref.stateDict());
    assertEquals(loaded.value, ref.value, `t=${t}`);
    assertEquals(loaded.step(), ref.step(), `t=${t} next`);
  }
  assertThrows(() => new CoefficientScheduler(Number.NaN, 1), TrainingError);
});
