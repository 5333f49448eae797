/**
 * Errors of the pipeline runner and CLI.
 * @module
 */

import { SaeflowError } from "../util/errors.ts";

/** A run cannot start or continue: names what was wrong and what was expected. */
export class PipelineError extends SaeflowError {}
