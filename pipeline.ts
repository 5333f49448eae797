/**
 * The saeflow command line: train SAEs from SAELens runner configs.
 *
 * ```sh
 * deno run -A pipeline.ts train examples/shakespeare.yaml --lr 1e-3 --sae.k 32
 * deno run -A pipeline.ts resume out/demo/checkpoints/<run id>
 * deno run -A --unstable-cron pipeline.ts schedule examples/shakespeare.yaml --cron '0 3 * * *'
 * deno run -A pipeline.ts --help
 * ```
 *
 * The commands live in `pipeline/cli.ts` (`main`), testable as functions. When `main` returns,
 * the GPU is let finish the work already submitted (a run that failed early may leave a model
 * forward in flight; tearing the device down under it crashed the process at exit), and the
 * process exits with `main`'s code at once, so nothing left running (a tokenizer Worker, a
 * native teardown) can turn a finished run into a failure.
 * @module
 */

import { currentGpu } from "./gpu/device.ts";
import { main } from "./pipeline/cli.ts";
import { quietMesaRuntimeDir } from "./util/env.ts";

export { main };

/** Waits until the default GPU device (if one was opened) has finished its submitted work. */
async function settleGpu(): Promise<void> {
  let gpu;
  try {
    gpu = currentGpu();
  } catch {
    return; // no device was opened
  }
  try {
    await gpu.sync();
  } catch { /* a failed or lost device: nothing to wait for */ }
}

/** Ends the process with `code` once the GPU has settled. */
async function exit(code: number): Promise<never> {
  await settleGpu();
  Deno.exit(code);
}

if (import.meta.main) {
  quietMesaRuntimeDir();
  await exit(await main(Deno.args, { exit }));
}
