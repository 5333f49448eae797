/**
 * Logging a training run: the metrics-event contract (`types.ts`), progress output
 * (`progress.ts`), the JSONL metrics file (`jsonl.ts`), Weights & Biases over its HTTP API
 * (`wandb*.ts`), and helpers that feed the metrics stream (`events.ts`). The log stage
 * (`stages/log.ts`) joins them into the pipeline.
 * @module
 */

export * from "./types.ts";
export * from "./format.ts";
export * from "./progress.ts";
export * from "./jsonl.ts";
export * from "./events.ts";
export * from "./wandb_settings.ts";
export * from "./wandb_format.ts";
export * from "./wandb_api.ts";
export * from "./wandb.ts";
