/**
 * The feature hierarchy of the synthetic generator (SynthSAEBench's `generate_hierarchy`): a
 * forest of `roots` trees built breadth first, each parent with `branching` children down to
 * `depth` levels below the roots. Feature indices are handed out in that breadth-first order
 * from 0, so roots take the most frequent features of the Zipfian ranking, every child has a
 * larger index than its parent, all features of one level come before the next level's, and the
 * children of one parent are consecutive. A child fires only when its parent fires; the
 * children of a mutually exclusive parent never fire together (one of the siblings that would
 * fire is kept, uniformly at random).
 * @module
 */

import type { Rng } from "../util/rng.ts";
import { SyntheticError } from "./errors.ts";

/** Shape of the hierarchy (SynthSAEBench `HierarchyConfig`, camelCase). */
export interface HierarchyConfig {
  /** Trees (SAELens `total_root_nodes`). */
  roots: number;
  /** Children per parent (`branching_factor`). */
  branching: number;
  /** Levels below the roots (`max_depth`): 1 gives roots and their children. */
  depth: number;
  /**
   * Share of parents (with at least two children) whose children are mutually exclusive
   * (`mutually_exclusive_portion`, default 1: all of them, as SynthSAEBench-16k).
   */
  mutuallyExclusivePortion?: number;
  /**
   * Raise the children's base probabilities so that their firing rates after the hierarchy
   * approximately equal their Zipfian probabilities (`compensate_probabilities`, default true).
   */
  compensateProbabilities?: boolean;
  /**
   * Scale a child's magnitude by its parent's magnitude ÷ the parent's mean magnitude
   * (`scale_children_by_parent`, default false).
   */
  scaleChildrenByParent?: boolean;
}

/** A built hierarchy over `nFeatures` features (features outside it have parent and group −1). */
export interface FeatureHierarchy {
  /** Parent feature of each feature, −1 for roots and features outside the hierarchy. */
  parent: Int32Array;
  /** Mutually exclusive sibling group of each feature, −1 when none. */
  group: Int32Array;
  /** Level of each feature (0 = root), −1 outside the hierarchy. */
  level: Int32Array;
  /** First child of each feature (children are consecutive); meaningful when childCount > 0. */
  childStart: Int32Array;
  /** Number of children of each feature. */
  childCount: Int32Array;
  /** Per group: first feature index (the group's features are consecutive). */
  groupStart: Int32Array;
  /** Per group: number of features. */
  groupSize: Int32Array;
  /** Features in the hierarchy (they are the indices 0 … size − 1). */
  size: number;
  /** Whether children's magnitudes are scaled by their parent's. */
  scaleChildrenByParent: boolean;
}

function checkInt(v: unknown, name: string, min: number): void {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new SyntheticError(`hierarchy.${name} is ${v}, expected an integer >= ${min}`);
  }
}

/**
 * Builds the hierarchy (see the module doc). Trees are cut short when the features run out.
 * `rng` picks which parents get mutually exclusive children when the portion is below 1.
 *
 * @example
 * ```ts
 * import { Mulberry32 } from "../util/rng.ts";
 * import { buildHierarchy } from "./hierarchy.ts";
 * const h = buildHierarchy(20, { roots: 2, branching: 3, depth: 1 }, new Mulberry32(0));
 * // roots 0, 1; children of 0 are 2, 3, 4 and of 1 are 5, 6, 7; 8… are outside
 * if (h.size !== 8 || h.parent[4] !== 0 || h.parent[5] !== 1 || h.parent[8] !== -1) throw new Error();
 * if (h.group[2] !== h.group[4] || h.group[2] === h.group[5] || h.groupSize[0] !== 3) throw new Error();
 * ```
 */
export function buildHierarchy(
  nFeatures: number,
  cfg: HierarchyConfig,
  rng: Rng,
): FeatureHierarchy {
  checkInt(cfg.roots, "roots", 1);
  checkInt(cfg.branching, "branching", 1);
  checkInt(cfg.depth, "depth", 0);
  const portion = cfg.mutuallyExclusivePortion ?? 1;
  if (!(portion >= 0 && portion <= 1)) {
    throw new SyntheticError(
      `hierarchy.mutuallyExclusivePortion is ${portion}, expected a number in [0, 1]`,
    );
  }
  const parent = new Int32Array(nFeatures).fill(-1);
  const childStart = new Int32Array(nFeatures);
  const childCount = new Int32Array(nFeatures);
  const level = new Int32Array(nFeatures).fill(-1);
  let next = 0;
  let current: number[] = [];
  for (let r = 0; r < cfg.roots && next < nFeatures; r++) {
    level[next] = 0;
    current.push(next++);
  }
  // Parents with their children's range, in breadth-first order.
  const families: { parent: number; start: number; size: number }[] = [];
  for (let depth = 0; depth < cfg.depth && current.length > 0; depth++) {
    const below: number[] = [];
    for (const p of current) {
      const start = next;
      for (let c = 0; c < cfg.branching && next < nFeatures; c++) {
        parent[next] = p;
        level[next] = depth + 1;
        below.push(next++);
      }
      if (next > start) families.push({ parent: p, start, size: next - start });
      childStart[p] = start;
      childCount[p] = next - start;
    }
    current = below;
  }
  const eligible = families.filter((f) => f.size >= 2);
  const nMe = Math.floor(eligible.length * portion);
  // A uniformly random subset of nMe eligible parents (partial Fisher–Yates), kept in order.
  const order = eligible.map((_, i) => i);
  for (let i = 0; i < nMe; i++) {
    const j = i + rng.nextInt(order.length - i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const chosen = order.slice(0, nMe).sort((a, b) => a - b).map((i) => eligible[i]);
  const group = new Int32Array(nFeatures).fill(-1);
  const groupStart = new Int32Array(chosen.length);
  const groupSize = new Int32Array(chosen.length);
  chosen.forEach((f, g) => {
    groupStart[g] = f.start;
    groupSize[g] = f.size;
    group.fill(g, f.start, f.start + f.size);
  });
  return {
    parent,
    group,
    level,
    childStart,
    childCount,
    groupStart,
    groupSize,
    size: next,
    scaleChildrenByParent: cfg.scaleChildrenByParent ?? false,
  };
}

/**
 * SynthSAEBench's probability compensation (`compute_probability_correction_factors`): a child
 * of a parent with target probability P fires only with it, so its base probability is divided
 * by P; a child in a mutually exclusive group is further multiplied by 1 + (sum of its
 * siblings' target probabilities) ÷ P, the expected number of competitors. Results are capped
 * at 1. Returns the base probabilities to sample with.
 *
 * @example
 * ```ts
 * import { Mulberry32 } from "../util/rng.ts";
 * import { buildHierarchy, compensatedProbabilities } from "./hierarchy.ts";
 * const h = buildHierarchy(3, { roots: 1, branching: 2, depth: 1 }, new Mulberry32(0));
 * const p = compensatedProbabilities(Float64Array.of(0.5, 0.1, 0.05), h);
 * // child 1: 0.1 / 0.5 · (1 + 0.05 / 0.5) = 0.22; child 2: 0.05 / 0.5 · (1 + 0.1 / 0.5) = 0.12
 * if (Math.abs(p[1] - 0.22) > 1e-12 || Math.abs(p[2] - 0.12) > 1e-12 || p[0] !== 0.5) throw new Error();
 * ```
 */
export function compensatedProbabilities(
  target: Float64Array,
  h: FeatureHierarchy,
): Float64Array {
  const out = Float64Array.from(target);
  for (let f = 0; f < h.size; f++) {
    const p = h.parent[f];
    if (p >= 0 && target[p] > 0) out[f] = target[f] / target[p];
  }
  for (let g = 0; g < h.groupStart.length; g++) {
    const s = h.groupStart[g], n = h.groupSize[g];
    const p = h.parent[s];
    if (p < 0 || !(target[p] > 0)) continue;
    let total = 0;
    for (let i = s; i < s + n; i++) total += target[i];
    for (let i = s; i < s + n; i++) out[i] *= 1 + Math.max(0, total - target[i]) / target[p];
  }
  for (let f = 0; f < out.length; f++) out[f] = Math.min(1, out[f]);
  return out;
}
