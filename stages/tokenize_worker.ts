/**
 * Source + tokenize in a Web Worker: {@link tokenizeInWorker} returns the token-block stream the
 * hook stage reads, while reading files, decompressing and tokenizing run on another thread — a
 * GPU sync blocks Deno's main thread for the whole step, and the next blocks are ready when it
 * returns. The worker (`tokenize_worker_entry.ts`) runs {@link source} and {@link TokenizeCore}
 * exactly as the in-thread stages do, so both give the same blocks and cursors; blocks come back
 * with their token buffers transferred, not copied. Errors in the worker surface on the stream
 * as the same error classes ({@link DatasetError}, {@link StageError}, …) with the same messages.
 * @module
 */

import { HubError } from "../hub/errors.ts";
import { TokenizerError } from "../hub/errors.ts";
import type { TokenizerSource } from "../hub/tokenizer.ts";
import { DatasetError, type SourceOptions } from "./source.ts";
import type { TokenizeOptions } from "./tokenize.ts";
import { StageError, type TokenBlock } from "./types.ts";

/** What the worker is started with (structured-cloneable). */
export interface TokenizeWorkerInit {
  /** Source options (no signal: cancel the stream instead). */
  source: Omit<SourceOptions, "signal">;
  /** Tokenize options without `encode`. */
  tokenize: Omit<TokenizeOptions, "encode">;
  /** The tokenizer to build in the worker, or null for pretokenized datasets. */
  tokenizer: TokenizerSource | null;
}

/** Messages from the worker. */
export type TokenizeWorkerReply =
  | { type: "block"; block: TokenBlock }
  | { type: "done" }
  | { type: "error"; name: string; message: string };

const ERRORS: Record<string, new (message: string) => Error> = {
  DatasetError,
  StageError,
  TokenizerError,
};

/** Rebuilds an error the worker reported, as its own class where saeflow knows it. */
export function reviveError(name: string, message: string): Error {
  if (name === "HubError") return new HubError("protocol", message);
  const Ctor = ERRORS[name] ?? StageError;
  return new Ctor(message);
}

/** Options of {@link tokenizeInWorker}. */
export interface TokenizeInWorkerOptions extends TokenizeWorkerInit {
  /** Blocks tokenized ahead of the reader (default 2). */
  prefetch?: number;
}

/**
 * The token-block stream of `source → tokenize`, computed in a Worker (see the module doc).
 * Cancel the stream (or let the pipeline cancel it) to stop the worker.
 *
 * @example
 * ```ts ignore
 * const blocks = tokenizeInWorker({
 *   source: { datasetPath: "data/tinyshakespeare.txt" },
 *   tokenize: { contextSize: 64, blockSize: 8, beginBatchTokenId: 256, sequenceSeparatorTokenId: 256 },
 *   tokenizer: model.tokenizer!.source!,
 * });
 * ```
 */
export function tokenizeInWorker(options: TokenizeInWorkerOptions): ReadableStream<TokenBlock> {
  const { prefetch = 2, ...init } = options;
  let worker: Worker | null = null;
  let waiting: ((reply: TokenizeWorkerReply) => void) | null = null;
  const stop = () => {
    worker?.terminate();
    worker = null;
  };
  return new ReadableStream<TokenBlock>({
    start() {
      worker = new Worker(new URL("./tokenize_worker_entry.ts", import.meta.url), {
        type: "module",
      });
      worker.onmessage = (e: MessageEvent<TokenizeWorkerReply>) => {
        const w = waiting;
        waiting = null;
        w?.(e.data);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        const w = waiting;
        waiting = null;
        w?.({ type: "error", name: "StageError", message: `tokenize worker: ${e.message}` });
      };
      worker.postMessage({ type: "init", init });
    },
    async pull(controller) {
      if (!worker) return;
      const reply = await new Promise<TokenizeWorkerReply>((resolve) => {
        waiting = resolve;
        worker!.postMessage({ type: "pull" });
      });
      if (reply.type === "block") controller.enqueue(reply.block);
      else if (reply.type === "done") {
        stop();
        controller.close();
      } else {
        stop();
        controller.error(reviveError(reply.name, reply.message));
      }
    },
    cancel() {
      stop();
    },
  }, { highWaterMark: prefetch });
}
