/**
 * The Worker side of `tokenize_worker.ts`: `init` starts the source and the tokenizer core;
 * each `pull` answers with the next block (its token buffer transferred), `done`, or `error`.
 * @module
 */

/// <reference lib="deno.worker" />

import { tokenizerFromJson } from "../hub/tokenizer.ts";
import { source } from "./source.ts";
import { encoderFor, TokenizeCore } from "./tokenize.ts";
import type { TokenizeWorkerInit, TokenizeWorkerReply } from "./tokenize_worker.ts";
import type { TokenBlock } from "./types.ts";

let reader: ReadableStreamDefaultReader | null = null;
let core: TokenizeCore | null = null;
const ready: TokenBlock[] = [];
let ended = false;

function reply(msg: TokenizeWorkerReply, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

async function next(): Promise<void> {
  while (ready.length === 0 && !ended) {
    const r = await reader!.read();
    if (r.done) {
      ended = true;
      break;
    }
    ready.push(...core!.push(r.value));
  }
  const block = ready.shift();
  if (block) reply({ type: "block", block }, [block.tokens.buffer as ArrayBuffer]);
  else reply({ type: "done" });
}

self.onmessage = async (e: MessageEvent) => {
  try {
    if (e.data.type === "init") {
      const init = e.data.init as TokenizeWorkerInit;
      const tok = init.tokenizer
        ? tokenizerFromJson(
          init.tokenizer.tokenizerJson,
          init.tokenizer.tokenizerConfig,
          init.tokenizer.specialTokensMap,
        )
        : null;
      core = new TokenizeCore({ ...init.tokenize, encode: tok ? encoderFor(tok) : null });
      reader = source(init.source).getReader();
    } else if (e.data.type === "pull") {
      await next();
    }
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    reply({ type: "error", name: error.name, message: error.message });
  }
};
