/**
 * Short human formats for progress output: counts with SI suffixes, metric values with four
 * significant digits, durations as `1h02m` / `3m05s` / `12s`.
 * @module
 */

const UNITS = ["", "k", "M", "G", "T", "P"];

/**
 * A count or rate with three significant digits and an SI suffix (`950`, `1.23k`, `2.00M`);
 * values under 1000 that are not integers keep three significant digits (`12.5`).
 *
 * @example
 * ```ts
 * import { formatCount } from "./format.ts";
 * if (formatCount(2_000_000) !== "2.00M" || formatCount(12_345) !== "12.3k") throw new Error();
 * if (formatCount(950) !== "950" || formatCount(999_999) !== "1.00M") throw new Error();
 * ```
 */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "NaN" : n > 0 ? "inf" : "-inf";
  const sign = n < 0 ? "-" : "";
  let v = Math.abs(n), unit = 0;
  if (v < 1000) return sign + (Number.isInteger(v) ? String(v) : trimExp(v.toPrecision(3)));
  while (unit < UNITS.length - 1 && Number(v.toPrecision(3)) >= 1000) {
    v /= 1000;
    unit++;
  }
  return sign + v.toPrecision(3) + UNITS[unit];
}

function trimExp(s: string): string {
  return s.includes("e") ? String(Number(s)) : s;
}

/**
 * A metric value: integers as they are (below 1e6), others with four significant digits;
 * `NaN`, `inf`, `-inf` for non-finite values.
 *
 * @example
 * ```ts
 * import { formatMetric } from "./format.ts";
 * if (formatMetric(0.012346) !== "0.01235" || formatMetric(3) !== "3") throw new Error();
 * if (formatMetric(NaN) !== "NaN" || formatMetric(2.5e-7) !== "2.5e-7") throw new Error();
 * ```
 */
export function formatMetric(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "inf" : "-inf";
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  return String(Number(v.toPrecision(4)));
}

/**
 * A duration in seconds as `12s`, `3m05s` or `1h02m` (`?` when unknown or negative).
 *
 * @example
 * ```ts
 * import { formatDuration } from "./format.ts";
 * if (formatDuration(185) !== "3m05s" || formatDuration(3720) !== "1h02m") throw new Error();
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.floor(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Bytes as MiB or GiB with one decimal (`512.0 MiB`, `1.5 GiB`).
 *
 * @example
 * ```ts
 * import { formatBytes } from "./format.ts";
 * if (formatBytes(3 * 2 ** 29) !== "1.5 GiB") throw new Error();
 * ```
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const mib = bytes / 2 ** 20;
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib.toFixed(1)} MiB`;
}
