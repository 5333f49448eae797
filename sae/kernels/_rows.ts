/**
 * The SAE kernels' row dispatcher: kernels on `[rows, cols]` matrices processed in row windows (a
 * tensor larger than one storage binding is processed window by window; per-row state and
 * per-column parameters stay bound whole). Everything else comes from the kernel toolkit
 * (`gpu/kernel.ts`).
 * @module
 */

import type { Bindable, Gpu } from "../../gpu/device.ts";
import { grid1d, packUniform, spans, windowOf } from "../../gpu/kernel.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { SaeKernelError } from "./errors.ts";

/** Invocations per workgroup of the elementwise row kernels. */
export const ROW_WG = 256;

/**
 * Records `pipeline` over `rows × cols`, window by window. Bindings, in order: each tensor of
 * `windowed` (all `[rows, cols]`) as the window's rows, then `whole`, then a uniform
 * `{rowStart, rowCount, cols, extra…}` (u32 words; `extra` are f32). `perRow` = true launches one
 * workgroup per row (`grid1d(rowCount)`), else one invocation per element in workgroups of
 * {@link ROW_WG}.
 */
export function dispatchRows(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  rows: number,
  cols: number,
  windowed: Tensor[],
  whole: Bindable[],
  extra: number[] = [],
  perRow = false,
): void {
  if (rows === 0 || cols === 0) return;
  const spec = "uuu" + "f".repeat(extra.length);
  for (const w of spans(gpu, rows, cols, { error: SaeKernelError })) {
    const uniform = gpu.uniform(packUniform(spec, w.start, w.count, cols, ...extra));
    const groups = perRow ? w.count : Math.ceil((w.count * cols) / ROW_WG);
    gpu.dispatch(
      pipeline,
      [...windowed.map((t) => windowOf(t, w.start * cols, w.count * cols)), ...whole, uniform],
      grid1d(gpu, groups),
    );
  }
}
