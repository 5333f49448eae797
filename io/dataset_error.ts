/** The error every dataset reader and the source stage throw on bad input. @module */

import { SaeflowError } from "../util/errors.ts";

/**
 * A dataset could not be read as asked: a missing file, folder or hub repo, a split with no data
 * files, no known column, a malformed JSON line, a corrupt or truncated Parquet/zstd/gzip file,
 * an interrupted download, an empty dataset, or a resume cursor that does not fit the data.
 * The message names the file (and line or row) and what was expected; `cause` keeps the
 * underlying error when there was one.
 *
 * @example
 * ```ts
 * import { DatasetError } from "./dataset_error.ts";
 * const e = new DatasetError("data.jsonl:3: malformed JSON line; expected one JSON object per line");
 * if (e.name !== "DatasetError") throw new Error("unexpected name");
 * ```
 */
export class DatasetError extends SaeflowError {}

/** The message of any thrown value (first line only for long native messages). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
