import { assert, assertEquals, assertThrows } from "../assert.ts";
import { seqposIndices, seqposSliceLength, validateSeqposSlice } from "../../config/seqpos.ts";
import {
  checkpointThresholds,
  defaultCachedActivationsPath,
  defaultRunName,
  tokensPerBuffer,
  totalTrainingSteps,
} from "../../config/derived.ts";
import { formatPythonExp, pythonFloatRepr } from "../../config/pyformat.ts";
import { ConfigError } from "../../config/errors.ts";

Deno.test("seqposSliceLength: Python slice semantics incl. negatives and clamping", () => {
  // [args, expected indices of range(10)[slice(*args)]] (values checked against CPython).
  const cases: [(number | null)[], number[]][] = [
    [[null], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
    [[5], [0, 1, 2, 3, 4]], // one argument is `stop`
    [[-3], [0, 1, 2, 3, 4, 5, 6]],
    [[2, 8], [2, 3, 4, 5, 6, 7]],
    [[5, -5], []],
    [[-4, null], [6, 7, 8, 9]],
    [[null, 100], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
    [[-100, 2], [0, 1]],
    [[1, null, 3], [1, 4, 7]],
    [[8, 2, -2], [8, 6, 4]],
    [[null, null, -1], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]],
    [[-1, -4, -1], [9, 8, 7]],
    [[100, null, -3], [9, 6, 3, 0]],
    [[6, 3], []],
  ];
  for (const [args, expected] of cases) {
    assertEquals(seqposIndices(10, args), expected, JSON.stringify(args));
    assertEquals(seqposSliceLength(10, args), expected.length, JSON.stringify(args));
  }
  assertEquals(seqposSliceLength(128, [null]), 128);
  assertThrows(() => seqposSliceLength(10, [0, 5, 0]), ConfigError, "zero");
  assertThrows(() => seqposSliceLength(10, []), ConfigError, "1 to 3");
  assertThrows(() => seqposSliceLength(10, [1, 2, 3, 4]), ConfigError, "1 to 3");
  assertThrows(() => seqposSliceLength(10, [1.5]), ConfigError);
});

Deno.test("validateSeqposSlice: the §4.6 cases", () => {
  validateSeqposSlice([null], 10);
  validateSeqposSlice([2, 8], 10);
  validateSeqposSlice([0, 10, 2], 10);
  validateSeqposSlice([5, -5], 128);
  for (const bad of [[null, 10, -1], [null, 10, 0], [5, 5, null], [6, 3, null], [0, 10, 1]]) {
    const err = assertThrows(() => validateSeqposSlice(bad, 10), ConfigError, "greater than 1");
    assert(err.message.includes(JSON.stringify(bad)), err.message);
  }
  assertThrows(() => validateSeqposSlice([6, 3], 10), ConfigError, "selects no position");
  assertThrows(() => validateSeqposSlice([10], 0), ConfigError, "no position");
  assertThrows(() => validateSeqposSlice("2:8", 10), ConfigError, "slice arguments");
});

Deno.test("checkpointThresholds: range(0, total, ceil(total/(n+1)))[1:]", () => {
  assertEquals(checkpointThresholds(100, 2), [34, 68]);
  assertEquals(checkpointThresholds(100, 0), []);
  assertEquals(checkpointThresholds(100, 1), [50]);
  assertEquals(checkpointThresholds(10, 3), [3, 6, 9]);
  assertEquals(checkpointThresholds(7, 10), [1, 2, 3, 4, 5, 6]);
  assertEquals(checkpointThresholds(300_000_000, 10).length, 10);
  assertEquals(checkpointThresholds(300_000_000, 10)[0], 27_272_728);
  assertThrows(() => checkpointThresholds(0, 2), ConfigError, "training_tokens");
  assertThrows(() => checkpointThresholds(100, -1), ConfigError, "n_checkpoints");
});

Deno.test("Python float formatting for run names", () => {
  const repr: [number, string][] = [
    [3e-4, "0.0003"],
    [4e-4, "0.0004"],
    [1e-4, "0.0001"],
    [5e-5, "5e-05"],
    [2e-5, "2e-05"],
    [1.5e-7, "1.5e-07"],
    [1, "1.0"],
    [0.1, "0.1"],
    [123.25, "123.25"],
    [1e16, "1e+16"],
    [1234567890123456, "1234567890123456.0"],
    [-0.5, "-0.5"],
  ];
  for (const [x, s] of repr) assertEquals(pythonFloatRepr(x), s, String(x));
  const exp: [number, string][] = [
    [2_000_000, "2.000e+06"],
    [300_000_000, "3.000e+08"],
    [122_880_000, "1.229e+08"],
    [12345, "1.234e+04"], // exact tie → half-even (JS toExponential gives 1.235e+04)
    [12355, "1.236e+04"],
    [99995, "1.000e+05"],
    [1.0625, "1.062e+00"],
    [0, "0.000e+00"],
    [1e-300, "1.000e-300"],
  ];
  for (const [x, s] of exp) assertEquals(formatPythonExp(x, 3, 3), s, String(x));
  assertEquals(formatPythonExp(5, 1, 10), "   5.0e+00");
});

Deno.test("derived runner values", () => {
  assertEquals(
    defaultRunName("standard", 16384, 5e-5, 122_880_000),
    "standard-16384-LR-5e-05-Tokens-1.229e+08",
  );
  assertEquals(
    defaultRunName("topk", 1024, 3e-4, 2_000_000),
    "topk-1024-LR-0.0003-Tokens-2.000e+06",
  );
  assertEquals(totalTrainingSteps({ trainingTokens: 1_000_000, trainBatchSizeTokens: 4 }), 250_000);
  assertEquals(totalTrainingSteps({ trainingTokens: 10, trainBatchSizeTokens: 4 }), 2);
  assertEquals(
    tokensPerBuffer({ trainBatchSizeTokens: 4096, contextSize: 128, nBatchesInBuffer: 20 }),
    10_485_760,
  );
  assertEquals(
    defaultCachedActivationsPath("ds/path", "model/name", "blocks.0.hook_z", null),
    "activations/ds_path/model_name/blocks.0.hook_z",
  );
  assertEquals(defaultCachedActivationsPath("d", "m", "h", 3), "activations/d/m/h_3");
});
