/** Errors of the plain-TS reference. @module */

import { SaeflowError } from "../../util/errors.ts";

/** Error thrown by the reference implementation (bad shapes, unknown modes, …). */
export class SaeReferenceError extends SaeflowError {}
