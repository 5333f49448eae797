// The synthetic generator (synthetic/model.ts, hierarchy.ts, normal.ts): determinism per block,
// marginal firing rates (independent, correlated, hierarchical), the hierarchy's rules,
// magnitudes, correlations, validation, and SynthSAEBench-16k's L0 at its real size.

import { SyntheticError } from "../../synthetic/errors.ts";
import {
  type SparseCodes,
  SyntheticModel,
  synthSaeBenchConfig,
  zipfProbabilities,
} from "../../synthetic/model.ts";
import { normalUpperTail, normalUpperTailInverse } from "../../synthetic/normal.ts";
import { assert, assertClose, assertEquals, assertThrows } from "../assert.ts";

/** Firing counts per feature and pair statistics over a block. */
function counts(codes: SparseCodes, n: number): Float64Array {
  const c = new Float64Array(n);
  for (const i of codes.index) c[i]++;
  return c;
}

function rowsOf(codes: SparseCodes): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < codes.rows; r++) {
    out.push([...codes.index.subarray(codes.rowPtr[r], codes.rowPtr[r + 1])]);
  }
  return out;
}

/** Asserts an empirical frequency is within `z` binomial standard deviations of p. */
function assertRate(hits: number, rows: number, p: number, z: number, what: string): void {
  const sd = Math.sqrt(p * (1 - p) / rows);
  assert(
    Math.abs(hits / rows - p) <= z * sd + 1e-12,
    `${what}: rate ${hits / rows} vs ${p} (± ${z}·${sd.toExponential(2)})`,
  );
}

Deno.test("normal helpers: Φ̄ and its inverse against known quantiles", () => {
  assertClose(normalUpperTail(1.6448536), 0.05, 2e-8);
  assertClose(normalUpperTail(-2.3263479), 0.99, 2e-8);
  for (const p of [0.4, 0.05, 1e-3, 5e-4, 1e-6, 0.999]) {
    assertClose(normalUpperTail(normalUpperTailInverse(p)), p, 1e-7 * p + 1e-12, 0, `p ${p}`);
  }
  assertEquals(normalUpperTailInverse(0), Infinity);
  assertEquals(normalUpperTailInverse(1), -Infinity);
});

Deno.test("zipfProbabilities: SAELens's rescaled power law", () => {
  const p = zipfProbabilities(4, 0.5, 0.4, 0.1);
  // 1/√(i+1) = 1, .7071, .5774, .5 → linearly onto [0.1, 0.4].
  assertClose(p[0], 0.4, 1e-15);
  assertClose(p[3], 0.1, 1e-15);
  assertClose(p[1], 0.1 + 0.3 * (Math.SQRT1_2 - 0.5) / 0.5, 1e-15);
  assertEquals([...zipfProbabilities(1, 1, 0.3, 0.01)], [0.3]);
});

Deno.test("model: unit dictionary, bias norm, deterministic blocks that depend only on (seed, stream, block)", () => {
  const m = new SyntheticModel({ dIn: 32, nFeatures: 96, biasNorm: 0.5, seed: 4 });
  for (let i = 0; i < 96; i++) {
    assertClose(Math.hypot(...m.dictionary.subarray(i * 32, i * 32 + 32)), 1, 1e-6);
  }
  assertClose(Math.hypot(...m.bias), 0.5, 1e-6);
  const a = m.sampleBlock(3, 200);
  // Block 3 alone equals block 3 after other blocks, and a fresh model with the same seed.
  m.sampleBlock(0, 200);
  const b = new SyntheticModel({ dIn: 32, nFeatures: 96, biasNorm: 0.5, seed: 4 }).sampleBlock(
    3,
    200,
  );
  assertEquals(a, b);
  assertEquals(m.sampleBlock(3, 200), a);
  // Other blocks, streams and seeds differ.
  assert(m.sampleBlock(4, 200).index.join() !== a.index.join());
  assert(m.sampleBlock(3, 200, 1).index.join() !== a.index.join());
  const other = new SyntheticModel({ dIn: 32, nFeatures: 96, biasNorm: 0.5, seed: 5 });
  assert(other.sampleBlock(3, 200).index.join() !== a.index.join());
  assert(other.dictionary.join() !== m.dictionary.join());
  // Rows list features in increasing order, each once, with positive magnitudes.
  for (const row of rowsOf(a)) for (let i = 1; i < row.length; i++) assert(row[i] > row[i - 1]);
  assert(a.value.every((v) => v > 0));
  // Very large block numbers are fine (resuming far into a stream).
  assertEquals(m.sampleBlock(2 ** 40 + 3, 4).rows, 4);
});

Deno.test("model: independent features fire at their Zipfian rates, magnitudes around μ_i", () => {
  const n = 64, rows = 40000;
  const m = new SyntheticModel({
    dIn: 8,
    nFeatures: n,
    firing: { exponent: 1, maxProb: 0.3, minProb: 0.002 },
    magnitude: { meanStart: 5, meanEnd: 1, stdMean: 0.3, stdStd: 0.2 },
    seed: 1,
  });
  const codes = m.sampleBlock(0, rows);
  const c = counts(codes, n);
  for (let i = 0; i < n; i++) assertRate(c[i], rows, m.firingProbabilities[i], 4.5, `feature ${i}`);
  assertClose(codes.rowPtr[rows] / rows, m.targetL0(), 4.5 * Math.sqrt(m.targetL0() / rows));
  // Magnitude means: μ_0 = 5, μ_63 = 1 (σ_i ≤ ~1, so the ReLU rarely cuts).
  const sum = new Float64Array(n);
  codes.index.forEach((f, e) => (sum[f] += codes.value[e]));
  assertClose(sum[0] / c[0], 5, 0.05);
  assertClose(m.meanMagnitudes[n - 1], 1, 1e-12);
  assert(m.stdMagnitudes.every((s) => s >= 0));
});

Deno.test("model: low-rank copula keeps the marginals and correlates features with aligned factors", () => {
  const n = 40, rows = 30000;
  const m = new SyntheticModel({
    dIn: 8,
    nFeatures: n,
    firing: { exponent: 0.5, maxProb: 0.3, minProb: 0.05 },
    correlation: { rank: 2, scale: 0.5 },
    seed: 2,
  });
  const codes = m.sampleBlock(0, rows);
  const c = counts(codes, n);
  // The table-based Φ̄ has an absolute error below 2e-7: marginals stay the target rates.
  for (let i = 0; i < n; i++) assertRate(c[i], rows, m.firingProbabilities[i], 4.5, `feature ${i}`);
  // Latent correlation F_i·F_j; the pair with the largest and the one with the most negative
  // must co-fire more / less often than independent features would.
  const F = m.correlationFactor!;
  let hi = [0, 1], lo = [0, 1], hiV = -Infinity, loV = Infinity;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = F[i * 2] * F[j * 2] + F[i * 2 + 1] * F[j * 2 + 1];
      if (v > hiV) [hiV, hi] = [v, [i, j]];
      if (v < loV) [loV, lo] = [v, [i, j]];
    }
  }
  assert(hiV > 0.3 && loV < -0.3, `factor correlations ${hiV}, ${loV}`);
  const both = ([i, j]: number[]) =>
    rowsOf(codes).filter((r) => r.includes(i) && r.includes(j)).length;
  const indep = ([i, j]: number[]) => c[i] * c[j] / rows;
  assert(both(hi) > 1.3 * indep(hi), `aligned pair: ${both(hi)} vs ${indep(hi)}`);
  assert(both(lo) < 0.75 * indep(lo), `opposed pair: ${both(lo)} vs ${indep(lo)}`);
  // Without correlations the same pairs co-fire at the independent rate.
  const m0 = new SyntheticModel({ ...m.cfg, correlation: null });
  const c0 = m0.sampleBlock(0, rows);
  const k0 = counts(c0, n);
  const both0 = rowsOf(c0).filter((r) => r.includes(hi[0]) && r.includes(hi[1])).length;
  assertClose(both0, k0[hi[0]] * k0[hi[1]] / rows, 5 * Math.sqrt(k0[hi[0]] * k0[hi[1]] / rows));
});

Deno.test("hierarchy: children only with their parent, exclusive siblings, compensated rates", () => {
  const n = 300, rows = 40000;
  const m = new SyntheticModel({
    dIn: 8,
    nFeatures: n,
    firing: { exponent: 0.5, maxProb: 0.4, minProb: 0.01 },
    hierarchy: { roots: 4, branching: 3, depth: 2 },
    seed: 3,
  });
  const h = m.hierarchy!;
  // Breadth first: roots 0-3, their children 4-15, grandchildren 16-51; 52… outside.
  assertEquals(h.size, 52);
  assertEquals(h.parent[4], 0);
  assertEquals(h.parent[7], 1);
  assertEquals(h.parent[16], 4);
  assertEquals(h.parent[52], -1);
  assertEquals([h.childStart[4], h.childCount[4]], [16, 3]);
  const codes = m.sampleBlock(0, rows);
  let parentChecks = 0, exclusiveChecks = 0;
  for (const row of rowsOf(codes)) {
    const set = new Set(row);
    for (const f of row) {
      if (h.parent[f] >= 0) {
        assert(set.has(h.parent[f]), `feature ${f} fired without its parent ${h.parent[f]}`);
        parentChecks++;
      }
    }
    const groups = row.filter((f) => h.group[f] >= 0).map((f) => h.group[f]);
    assertEquals(new Set(groups).size, groups.length, `siblings fired together in ${row}`);
    exclusiveChecks += groups.length;
  }
  assert(parentChecks > 10000 && exclusiveChecks > 10000);
  // With mutual exclusion, siblings share their parent's firings: their rates add up to at
  // most the parent's (SAELens's first-order compensation cannot reach Zipfian targets whose
  // sum exceeds it), and compensation raises every child's rate above the uncompensated one.
  const c = counts(codes, n);
  const plain = counts(
    new SyntheticModel({
      ...m.cfg,
      hierarchy: { ...m.cfg.hierarchy!, compensateProbabilities: false },
    }).sampleBlock(0, rows),
    n,
  );
  for (let g = 0; g < h.groupStart.length; g++) {
    let sum = 0;
    for (let f = h.groupStart[g]; f < h.groupStart[g] + h.groupSize[g]; f++) sum += c[f];
    assert(sum <= c[h.parent[h.groupStart[g]]], `group ${g}: ${sum} child firings`);
  }
  for (let f = 4; f < h.size; f++) {
    assert(c[f] > 1.5 * plain[f], `feature ${f}: ${c[f]} vs ${plain[f]}`);
  }
  // Features outside the hierarchy are untouched.
  for (let f = 52; f < n; f += 31) {
    assertRate(c[f], rows, m.firingProbabilities[f], 4.5, `feature ${f}`);
  }
});

Deno.test("hierarchy without mutual exclusion: compensation gives children their Zipfian rates", () => {
  const n = 300, rows = 40000;
  const m = new SyntheticModel({
    dIn: 8,
    nFeatures: n,
    firing: { exponent: 0.5, maxProb: 0.4, minProb: 0.01 },
    hierarchy: { roots: 4, branching: 3, depth: 2, mutuallyExclusivePortion: 0 },
    seed: 3,
  });
  // p_child / p_parent sampled only under an active parent: exactly the target (all < 1 here).
  // (With correlations the product rule no longer holds exactly, in SAELens too.)
  const c = counts(m.sampleBlock(0, rows), n);
  for (let f = 4; f < 52; f++) {
    assert(m.baseProbabilities[f] < 1);
    assertRate(c[f], rows, m.firingProbabilities[f], 4.5, `feature ${f}`);
  }
});

Deno.test("hierarchy: children scaled by their parent's magnitude when asked", () => {
  const cfg = {
    dIn: 4,
    nFeatures: 3,
    firing: { exponent: 1, maxProb: 1, minProb: 1 },
    magnitude: { meanStart: 2, meanEnd: 2, stdMean: 0.2, stdStd: 0 }, // values in [0.66, 3.34]
    seed: 1,
  };
  // Chain 0 → 1 → 2, every feature always firing. Scaled: value_1 = (2 + 0.2·z)·value_0 / 2,
  // so child and parent values correlate (≈ 0.7); unscaled they are independent.
  const correlation = (scale: boolean) => {
    const m = new SyntheticModel({
      ...cfg,
      hierarchy: { roots: 1, branching: 1, depth: 2, scaleChildrenByParent: scale },
    });
    const codes = m.sampleBlock(0, 4000);
    const a: number[] = [], b: number[] = [];
    for (let r = 0; r < codes.rows; r++) {
      assertEquals(codes.rowPtr[r + 1] - codes.rowPtr[r], 3);
      a.push(codes.value[codes.rowPtr[r]]);
      b.push(codes.value[codes.rowPtr[r] + 1]);
    }
    const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
    const ma = mean(a), mb = mean(b);
    let sab = 0, saa = 0, sbb = 0;
    for (let i = 0; i < a.length; i++) {
      sab += (a[i] - ma) * (b[i] - mb);
      saa += (a[i] - ma) ** 2;
      sbb += (b[i] - mb) ** 2;
    }
    return { corr: sab / Math.sqrt(saa * sbb), mb };
  };
  const scaled = correlation(true), plain = correlation(false);
  assert(scaled.corr > 0.6, `scaled: ${scaled.corr}`);
  assert(Math.abs(plain.corr) < 0.08, `unscaled: ${plain.corr}`);
  assertClose(scaled.mb, 2, 0.03);
});

Deno.test("model: mutually exclusive portion, ME off, and no compensation", () => {
  const base = { dIn: 4, nFeatures: 40, seed: 1 };
  const none = new SyntheticModel({
    ...base,
    hierarchy: { roots: 2, branching: 3, depth: 2, mutuallyExclusivePortion: 0 },
  });
  assert(none.hierarchy!.group.every((g) => g === -1));
  const half = new SyntheticModel({
    ...base,
    hierarchy: { roots: 2, branching: 3, depth: 2, mutuallyExclusivePortion: 0.5 },
  });
  // 8 parents have ≥ 2 children (2 roots + 6 children); half of them: 4 groups.
  assertEquals(half.hierarchy!.groupStart.length, 4);
  const raw = new SyntheticModel({
    ...base,
    hierarchy: { roots: 2, branching: 3, depth: 2, compensateProbabilities: false },
  });
  assertEquals(raw.baseProbabilities, raw.firingProbabilities);
});

Deno.test("model: bad configs and block requests are refused with a SyntheticError naming the field", () => {
  const ok = { dIn: 4, nFeatures: 8 };
  assertThrows(() => new SyntheticModel({ ...ok, dIn: 0 }), SyntheticError, "dIn");
  assertThrows(() => new SyntheticModel({ ...ok, nFeatures: 2.5 }), SyntheticError, "nFeatures");
  assertThrows(
    () => new SyntheticModel({ ...ok, firing: { minProb: 0.5, maxProb: 0.1 } }),
    SyntheticError,
    "firing.minProb",
  );
  assertThrows(
    () => new SyntheticModel({ ...ok, firing: { maxProb: 1.5 } }),
    SyntheticError,
    "firing.maxProb",
  );
  assertThrows(
    () => new SyntheticModel({ ...ok, firing: { exponent: -1 } }),
    SyntheticError,
    "firing.exponent",
  );
  assertThrows(
    () => new SyntheticModel({ ...ok, correlation: { rank: 0 } }),
    SyntheticError,
    "correlation.rank",
  );
  assertThrows(() => new SyntheticModel({ ...ok, noiseStd: -1 }), SyntheticError, "noiseStd");
  assertThrows(
    () => new SyntheticModel({ ...ok, magnitude: { meanEnd: NaN } }),
    SyntheticError,
    "magnitude.meanEnd",
  );
  assertThrows(
    () => new SyntheticModel({ ...ok, hierarchy: { roots: 0, branching: 2, depth: 1 } }),
    SyntheticError,
    "hierarchy.roots",
  );
  assertThrows(
    () =>
      new SyntheticModel({
        ...ok,
        hierarchy: { roots: 1, branching: 2, depth: 1, mutuallyExclusivePortion: 2 },
      }),
    SyntheticError,
    "mutuallyExclusivePortion",
  );
  assertThrows(() => new SyntheticModel({ dIn: 65536, nFeatures: 65536 }), SyntheticError, "2^28");
  const m = new SyntheticModel(ok);
  assertThrows(() => m.sampleBlock(-1, 4), SyntheticError, "block");
  assertThrows(() => m.sampleBlock(0, 0), SyntheticError, "rows");
  assertThrows(() => m.sampleBlock(0, 4, -2), SyntheticError, "stream");
});

Deno.test("SynthSAEBench-16k at its real size: L0 ≈ 34 as SAELens documents", () => {
  const m = new SyntheticModel(synthSaeBenchConfig({ nFeatures: 16384, dIn: 768 }));
  assertEquals(m.hierarchy!.size, 128 * (1 + 4 + 16 + 64));
  const codes = m.sampleBlock(0, 512);
  const l0 = codes.rowPtr[512] / 512;
  assert(l0 > 31 && l0 < 38, `L0 ${l0}`);
});
