/**
 * The error of the synthetic-data package.
 * @module
 */

import { SaeflowError } from "../util/errors.ts";

/** A synthetic-data config, block request or metric input was wrong (names what and why). */
export class SyntheticError extends SaeflowError {}
