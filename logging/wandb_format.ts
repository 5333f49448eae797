/**
 * What W&B's servers expect inside the file-stream payload, as the Python SDK writes it:
 * history and summary lines serialised like Python's `json.dumps` (NaN and infinities as the bare
 * constants `NaN`, `Infinity`, `-Infinity`, which W&B's backend accepts), histograms as
 * `wandb.Histogram.to_json()` (`{"_type":"histogram","values":[counts],"bins":[edges]}`, 64
 * equal bins from min to max as `numpy.histogram`), and the run config as the backend's
 * `{key: {"desc": null, "value": …}}` dict.
 * @module
 */

/** A W&B histogram (`wandb.Histogram.to_json()`). */
export interface WandbHistogram {
  _type: "histogram";
  /** Counts per bin. */
  values: number[];
  /** Bin edges (one more than `values`). */
  bins: number[];
}

/**
 * JSON text as Python's `json.dumps` writes it: non-finite numbers as `NaN`, `Infinity`,
 * `-Infinity`; `undefined` and functions as `null`; typed arrays as lists.
 *
 * @example
 * ```ts
 * import { pyJson } from "./wandb_format.ts";
 * const s = pyJson({ a: NaN, b: [1, -Infinity], c: "x" });
 * if (s !== '{"a":NaN,"b":[1,-Infinity],"c":"x"}') throw new Error(s);
 * ```
 */
export function pyJson(value: unknown, depth = 0): string {
  if (depth > 64) return "null";
  switch (typeof value) {
    case "number":
      if (Number.isFinite(value)) return JSON.stringify(value);
      return Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value) || ArrayBuffer.isView(value)) {
        const items = Array.from(value as ArrayLike<unknown>, (v) => pyJson(v, depth + 1));
        return `[${items.join(",")}]`;
      }
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value)) {
        if (v !== undefined && typeof v !== "function") {
          parts.push(`${JSON.stringify(k)}:${pyJson(v, depth + 1)}`);
        }
      }
      return `{${parts.join(",")}}`;
    }
    default:
      return "null";
  }
}

/**
 * A W&B histogram of the finite entries of `data` with `numpy.histogram`'s rule: `nBins` equal
 * bins spanning [min, max] (min − 0.5 … max + 0.5 when all values are equal), each bin
 * half-open except the last. Null when no entry is finite.
 *
 * @example
 * ```ts
 * import { wandbHistogram } from "./wandb_format.ts";
 * const h = wandbHistogram([0, 1, 2, 3, 4], 4)!;
 * if (h.values.join() !== "1,1,1,2" || h.bins.join() !== "0,1,2,3,4") throw new Error();
 * ```
 */
export function wandbHistogram(data: ArrayLike<number>, nBins = 64): WandbHistogram | null {
  let lo = Infinity, hi = -Infinity, n = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    n++;
  }
  if (n === 0) return null;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const step = (hi - lo) / nBins;
  const bins = Array.from({ length: nBins + 1 }, (_, i) => (i === nBins ? hi : lo + i * step));
  const values = new Array<number>(nBins).fill(0);
  const norm = nBins / (hi - lo);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) continue;
    let b = Math.min(nBins - 1, Math.floor((v - lo) * norm));
    // numpy's correction for rounding in the scaled index
    if (v < bins[b]) b--;
    else if (b !== nBins - 1 && v >= bins[b + 1]) b++;
    values[b]++;
  }
  return { _type: "histogram", values, bins };
}

/** A metric value as W&B logs it: numbers as they are, lists as histograms (null: nothing). */
export function wandbValue(value: number | ArrayLike<number>): number | WandbHistogram | null {
  return typeof value === "number" ? value : wandbHistogram(value);
}

/**
 * The run config as the backend stores it: every top-level key as `{desc: null, value}`.
 *
 * @example
 * ```ts
 * import { wandbConfig } from "./wandb_format.ts";
 * const c = wandbConfig({ lr: 3e-4 });
 * if (JSON.stringify(c) !== '{"lr":{"desc":null,"value":0.0003}}') throw new Error();
 * ```
 */
export function wandbConfig(
  config: Record<string, unknown>,
): Record<string, { desc: null; value: unknown }> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, { desc: null, value: v }]));
}
