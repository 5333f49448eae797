/// <reference lib="deno.worker" />
/**
 * Test worker: runs the source stage inside a Web Worker and posts every batch back
 * (tokens transferred), then `"done"` — or `{ error }`.
 * @module
 */

import { source, type SourceOptions } from "../../stages/source.ts";

self.onmessage = async (e: MessageEvent<SourceOptions>) => {
  try {
    for await (const batch of source(e.data)) {
      const transfer = batch.docs.flatMap((
        d,
      ) => ("tokens" in d ? [d.tokens.buffer as ArrayBuffer] : []));
      self.postMessage(batch, { transfer });
    }
    self.postMessage("done");
  } catch (err) {
    self.postMessage({ error: `${(err as Error).name}: ${(err as Error).message}` });
  }
};
