/** Errors of the `SAE` class and its loaders. @module */

import { SaeflowError } from "../util/errors.ts";

/**
 * Misuse of an SAE: an input of the wrong shape, an unknown architecture, an operation the
 * architecture does not support (e.g. folding decoder norms into a TopK SAE without rescaling).
 */
export class SaeError extends SaeflowError {}

/**
 * An SAE folder or download that cannot be loaded: a missing file, unreadable JSON, tensors
 * missing or of the wrong shape. Messages name the file and the tensor or field.
 */
export class SaeLoadError extends SaeError {}
