/**
 * The error of `model/`: shapes, configs, missing or misshapen weights, bad hooks, bad tokens.
 * @module
 */

import { SaeflowError } from "../util/errors.ts";

/** Error thrown by the language model (shapes, configs, missing weights, bad hooks). */
export class ModelError extends SaeflowError {}
