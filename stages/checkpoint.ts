/**
 * The checkpoint stage: writes what the step stage captured, and the final outputs, in SAELens's
 * layout (spec §2.1, §5.5), every folder in one recoverable atomic write (`io/atomic.ts`).
 *
 * A checkpoint `checkpoint_path/<name>/` holds, for one SAE, SAELens's training checkpoint files
 * at its top (`cfg.json`, `sae_weights.safetensors`, `sparsity.safetensors`, trainer state,
 * `activation_scaler.json`); for several SAEs, one such folder per SAE name (as SAELens's
 * multi-SAE runner). Beside them: `runner_cfg.json`, `activations_store_state.safetensors`
 * (SAELens's `n_dataset_processed`) and saeflow's `pipeline_state.safetensors` — the buffer's
 * rows, the batches in flight, the shuffling RNG and the dataset cursor — which is what makes a
 * resumed run continue bit for bit.
 *
 * The final output `output_path/` holds the inference-form SAE (`cfg.json`,
 * `sae_weights.safetensors`, `sparsity.safetensors`) and `runner_cfg.json`; for several SAEs one
 * folder per SAE name and `runner_cfg.json` beside them.
 * @module
 */

import { writeFolderAtomic } from "../io/atomic.ts";
import { readSafetensors, type StTensor } from "../io/safetensors.ts";
import { serializeTo } from "../io/safetensors_write.ts";
import { checkpointFileBytes } from "../sae/training/checkpoint.ts";
import { saveInferenceModel } from "../sae/training/checkpoint_export.ts";
import { join } from "../util/path.ts";
import type { BufferSnapshot } from "./buffer.ts";
import type { PipelineCapture, StepEvent } from "./sae_step.ts";
import { type MetricsEvent, StageError, type TokenCursor } from "./types.ts";

/** File names the pipeline adds to a checkpoint folder. */
export const PIPELINE_FILES = {
  runnerCfg: "runner_cfg.json",
  storeState: "activations_store_state.safetensors",
  pipelineState: "pipeline_state.safetensors",
} as const;

/** Options of {@link checkpoint}. */
export interface CheckpointStageOptions {
  /** Where checkpoints go (SAELens `checkpoint_path`, run id appended); null: none. */
  checkpointPath: string | null;
  /** Where the final SAE(s) go (SAELens `output_path`); null: none. */
  outputPath: string | null;
  /** `runner_cfg.json` contents. */
  runnerConfig: Record<string, unknown>;
  /** One folder per SAE name (several SAEs), or the SAE files at the top (one SAE). */
  perSaeFolders: boolean;
}

const encodeJson = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2) + "\n");

/**
 * The files of `pipeline_state.safetensors` and `activations_store_state.safetensors` for a
 * capture (by file name).
 */
export function pipelineStateFiles(dir: string, capture: PipelineCapture): Map<string, Uint8Array> {
  const b = capture.buffer;
  const tensors: Record<string, StTensor> = {};
  const widths: Record<string, number> = b ? { ...b.widths } : {};
  let docsRead = 0;
  let meta: Record<string, unknown> = { version: 1, batch_index: capture.batchIndex };
  if (b) {
    for (const [k, data] of b.store) {
      tensors[`buffer.store.${k}`] = { dtype: "F32", shape: [b.storeRows, widths[k]], data };
    }
    for (const [k, data] of b.serving) {
      tensors[`buffer.serving.${k}`] = {
        dtype: "F32",
        shape: [b.servingRows, widths[k]],
        data,
      };
    }
    b.pending.forEach((p, i) => {
      for (const [k, data] of p.acts) {
        tensors[`buffer.pending.${i}.${k}`] = {
          dtype: "F32",
          shape: [data.length / widths[k], widths[k]],
          data,
        };
      }
    });
    const c = b.cursor;
    if (c) {
      tensors["cursor.carry"] = { dtype: "I32", shape: [c.carry.length], data: c.carry };
      docsRead = c.docsRead;
    }
    meta = {
      ...meta,
      widths,
      rng_state: b.rngState,
      next_index: b.nextIndex,
      store_rows: b.storeRows,
      serving_rows: b.servingRows,
      final: b.final,
      pending_indices: b.pending.map((p) => p.index),
      cursor: c
        ? { doc: c.doc, skip_rows: c.skipRows, docs_read: c.docsRead, sequences: c.sequences }
        : null,
    };
  }
  const statePath = join(dir, PIPELINE_FILES.pipelineState);
  const storePath = join(dir, PIPELINE_FILES.storeState);
  return new Map([
    [
      PIPELINE_FILES.pipelineState,
      serializeTo(statePath, tensors, { saeflow_pipeline_state: JSON.stringify(meta) }),
    ],
    [
      PIPELINE_FILES.storeState,
      serializeTo(storePath, {
        n_dataset_processed: {
          dtype: "I64",
          shape: [],
          data: BigInt64Array.of(BigInt(nDatasetProcessed(docsRead))),
        },
      }),
    ],
  ]);
}

/**
 * SAELens's `n_dataset_processed` for saeflow's documents-read count: SAELens counts a document
 * only once its generator moves past it, saeflow also the one the block's last row came from
 * (checked against SAELens's own store: always one less), so a SAELens resume from this file
 * skips exactly the documents SAELens would have consumed.
 *
 * @example
 * ```ts
 * import { nDatasetProcessed } from "./checkpoint.ts";
 * if (nDatasetProcessed(7) !== 6 || nDatasetProcessed(0) !== 0) throw new Error();
 * ```
 */
export function nDatasetProcessed(docsRead: number): number {
  return Math.max(0, docsRead - 1);
}

/** What {@link readPipelineState} returns. */
export interface PipelineState {
  /** Index of the last batch consumed before the checkpoint. */
  batchIndex: number;
  /** The buffer's state, or null when the checkpoint has none. */
  buffer: BufferSnapshot | null;
}

/** Reads `pipeline_state.safetensors` of checkpoint folder `dir`. */
export async function readPipelineState(dir: string): Promise<PipelineState> {
  const path = join(dir, PIPELINE_FILES.pipelineState);
  const { tensors, metadata } = await readSafetensors(path);
  const bad = (what: string): never => {
    throw new StageError(`${path}: ${what}; expected a pipeline state saeflow wrote`);
  };
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(metadata?.saeflow_pipeline_state ?? "null");
  } catch {
    return bad("its saeflow_pipeline_state metadata is not JSON");
  }
  if (typeof meta !== "object" || meta === null || meta.version !== 1) {
    return bad("no saeflow_pipeline_state metadata of version 1");
  }
  const int = (v: unknown, name: string): number =>
    Number.isSafeInteger(v) && (v as number) >= 0 ? v as number : bad(`${name} is ${v}`);
  const batchIndex = Number.isSafeInteger(meta.batch_index) ? meta.batch_index as number : -1;
  if (meta.widths === undefined) return { batchIndex, buffer: null };
  const widths = meta.widths as Record<string, number>;
  const f32 = (name: string, rows: number, d: number): Float32Array => {
    const t = tensors.get(name);
    if (
      !t || t.dtype !== "F32" || t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== d
    ) {
      return bad(
        `tensor ${name} is ${t ? `${t.dtype} [${t.shape}]` : "missing"}, not F32 [${rows}, ${d}]`,
      );
    }
    return t.data as Float32Array;
  };
  const storeRows = int(meta.store_rows, "store_rows");
  const servingRows = int(meta.serving_rows, "serving_rows");
  const store = new Map<string, Float32Array>(), serving = new Map<string, Float32Array>();
  for (const [k, d] of Object.entries(widths)) {
    int(d, `width of ${k}`);
    store.set(k, f32(`buffer.store.${k}`, storeRows, d));
    serving.set(k, f32(`buffer.serving.${k}`, servingRows, d));
  }
  const pendingIdx = Array.isArray(meta.pending_indices) ? meta.pending_indices : [];
  const pending = pendingIdx.map((index: unknown, i: number) => {
    const acts = new Map<string, Float32Array>();
    for (const [k, d] of Object.entries(widths)) {
      const t = tensors.get(`buffer.pending.${i}.${k}`);
      const rows = t?.shape[0] ?? 0;
      acts.set(k, f32(`buffer.pending.${i}.${k}`, rows, d));
    }
    return { index: int(index, "pending index"), acts };
  });
  let cursor: TokenCursor | null = null;
  const c = meta.cursor as Record<string, unknown> | null;
  if (c) {
    const carry = tensors.get("cursor.carry");
    if (!carry || carry.dtype !== "I32") bad("tensor cursor.carry is missing or not I32");
    const doc = c.doc as Record<string, unknown>;
    cursor = {
      doc: {
        epoch: int(doc?.epoch, "cursor epoch"),
        shard: int(doc?.shard, "cursor shard"),
        row: int(doc?.row, "cursor row"),
      },
      carry: Int32Array.from(carry!.data as Int32Array),
      skipRows: int(c.skip_rows, "skip_rows"),
      docsRead: int(c.docs_read, "docs_read"),
      sequences: int(c.sequences, "sequences"),
    };
  }
  return {
    batchIndex,
    buffer: {
      widths: { ...widths },
      rngState: int(meta.rng_state, "rng_state"),
      nextIndex: int(meta.next_index, "next_index"),
      cursor,
      store,
      storeRows,
      serving,
      servingRows,
      final: meta.final === true,
      pending,
    },
  };
}

/** Writes one captured checkpoint as folder `dir` (see the module doc); returns nothing. */
export async function writePipelineCheckpoint(
  dir: string,
  capture: PipelineCapture,
  options: Pick<CheckpointStageOptions, "runnerConfig" | "perSaeFolders">,
): Promise<void> {
  const files = new Map<string, Uint8Array>();
  if (!options.perSaeFolders && capture.units.length !== 1) {
    throw new StageError(
      `checkpoint: ${capture.units.length} SAEs need one folder per SAE (perSaeFolders)`,
    );
  }
  for (const u of capture.units) {
    const sub = options.perSaeFolders ? u.info.id : "";
    for (const [name, bytes] of checkpointFileBytes(join(dir, sub), u.write)) {
      files.set(sub ? `${sub}/${name}` : name, bytes);
    }
  }
  files.set(PIPELINE_FILES.runnerCfg, encodeJson(options.runnerConfig));
  for (const [name, bytes] of pipelineStateFiles(dir, capture)) files.set(name, bytes);
  await writeFolderAtomic(dir, async (w) => {
    for (const [name, bytes] of files) await w.writeFile(name, bytes);
  });
}

/**
 * The checkpoint stage: writes `checkpoint-state` captures and, on `trained`, the final outputs;
 * emits `checkpoint` and `end` events and passes every other event through.
 */
export function checkpoint(
  options: CheckpointStageOptions,
): TransformStream<StepEvent, MetricsEvent> {
  return new TransformStream<StepEvent, MetricsEvent>({
    async transform(event, controller) {
      if (event.type === "checkpoint-state") {
        const c = event.capture;
        if (options.checkpointPath === null) return;
        const path = join(options.checkpointPath, c.name);
        await writePipelineCheckpoint(path, c, options);
        controller.enqueue({ type: "checkpoint", name: c.name, path, tokens: c.tokens });
        return;
      }
      if (event.type === "trained") {
        const values: Record<string, Record<string, number>> = {};
        if (options.outputPath !== null) {
          for (const u of event.units) {
            const dir = options.perSaeFolders ? join(options.outputPath, u.id) : options.outputPath;
            const extra = new Map<string, Uint8Array>();
            if (!options.perSaeFolders) {
              extra.set(PIPELINE_FILES.runnerCfg, encodeJson(options.runnerConfig));
            }
            await saveInferenceModel(u.trainer.sae, dir, {
              logSparsity: await u.trainer.logFeatureSparsity(),
              extraFiles: extra,
            });
          }
          if (options.perSaeFolders) {
            await writeFolderAtomic(options.outputPath, async (w) => {
              await w.writeJson(PIPELINE_FILES.runnerCfg, options.runnerConfig);
            }, { owned: [PIPELINE_FILES.runnerCfg] });
          }
        }
        controller.enqueue({ type: "end", tokens: event.tokens, values });
        return;
      }
      controller.enqueue(event);
    },
  });
}
