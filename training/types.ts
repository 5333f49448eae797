/**
 * A batch of activation rows as they travel from the activation store through the mixing buffer
 * to the trainer: `nRows` rows of `dIn` float32 values, row-major in `acts`
 * (`acts.length >= nRows·dIn`; only the first `nRows·dIn` entries are used), plus optionally the
 * id of the token each row was read at (`tokenIds.length >= nRows`).
 */
export interface ActivationBatch {
  /** Row-major `[nRows, dIn]` activations. */
  acts: Float32Array;
  /** Number of rows. */
  nRows: number;
  /** Token id per row, permuted together with the rows. */
  tokenIds?: Int32Array;
}
