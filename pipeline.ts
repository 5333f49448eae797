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
 * The commands live in `pipeline/cli.ts` (`main`), testable as functions. The process exits
 * with `main`'s code as soon as it is known, so nothing (a worker, WebGPU's teardown) can turn a
 * finished run into a failure at exit.
 * @module
 */

import { main } from "./pipeline/cli.ts";

export { main };

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
