/** Errors of the SAE kernels. @module */

import { GpuError } from "../../gpu/device.ts";

/** A bad argument to an SAE kernel (shape, dtype, mode), naming the op and the argument. */
export class SaeKernelError extends GpuError {}
