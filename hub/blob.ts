/**
 * Writing one downloaded blob into `blobs/<etag>` without ever trusting the server: the bytes
 * go to `blobs/<etag>.incomplete` (locked, so two processes never write it at once), the
 * download stops as soon as more bytes arrive than declared, an LFS blob (64-hex ETag = sha256)
 * is hashed while it streams and refused on a mismatch, and only a complete, verified file is
 * renamed to its final name. A download cut off by the network keeps its `.incomplete` file and
 * the next download of the same blob resumes it with a Range request (as `huggingface_hub`
 * does); bytes that failed a check are removed.
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { fileExists, onDisk } from "./cache.ts";
import { HubError } from "./errors.ts";
import { basename, dirname, join } from "../util/path.ts";

/** What {@link downloadBlob} needs. */
export interface BlobDownload {
  /** `<repo cache>/blobs/<etag>`. */
  blobPath: string;
  /** The validated ETag (40 or 64 hex digits); 64 digits = sha256 of the content. */
  etag: string;
  /** The declared size in bytes. */
  size: number;
  /** The download URL, for messages. */
  url: string;
  /** `cfg.json of model org/x`, for messages. */
  describe: string;
  /** Ignore a finished blob and a partial download: fetch everything again. */
  force: boolean;
  /** GETs the file, from byte `offset` on (a `Range: bytes=<offset>-` request) when > 0. */
  get(offset: number): Promise<Response>;
}

/** A failed check: the partial bytes must not be kept for a resume. */
class Discard extends Error {
  constructor(readonly error: HubError) {
    super(error.message);
  }
}

/**
 * Makes sure `blobs/` is a directory. An older saeflow, given an empty ETag, wrote a download
 * over `blobs` itself; that file is cache debris and is removed.
 */
async function ensureBlobDir(dir: string): Promise<void> {
  try {
    const st = await Deno.lstat(dir);
    if (!st.isDirectory) await Deno.remove(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(dir, { recursive: true });
}

/** Removes `<etag>.<pid>.<n>.<rand>.incomplete` files that older saeflow versions left behind. */
async function removeLegacyOrphans(blobPath: string): Promise<void> {
  const dir = dirname(blobPath);
  const prefix = basename(blobPath) + ".";
  try {
    for await (const e of Deno.readDir(dir)) {
      if (
        e.isFile && e.name.startsWith(prefix) &&
        /^\d+\.\d+\.[0-9a-z]+\.incomplete$/.test(e.name.slice(prefix.length))
      ) {
        await Deno.remove(join(dir, e.name)).catch(() => {});
      }
    }
  } catch {
    // best effort
  }
}

/** Feeds the first `n` bytes of `path` to `hash`. */
async function hashPrefix(path: string, n: number, hash: Hash): Promise<void> {
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  let left = n;
  while (left > 0) {
    const r = await f.read(buf.subarray(0, Math.min(buf.length, left)));
    if (r === null) throw new Error(`${path} shrank while being read`);
    hash.update(buf.subarray(0, r));
    left -= r;
  }
}

/** `bytes a-b/total` → the three numbers, or undefined. */
function parseContentRange(v: string | null): [number, number, number | undefined] | undefined {
  const m = v === null ? null : /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), m[3] === "*" ? undefined : Number(m[3])];
}

async function fill(file: Deno.FsFile, incomplete: string, spec: BlobDownload): Promise<void> {
  const { size, url, describe } = spec;
  let have = spec.force ? 0 : (await onDisk("reading", incomplete, () => file.stat())).size;
  if (have >= size) have = 0; // nothing left to resume (or debris): start over
  let resp = await spec.get(have);
  if (have > 0 && resp.status === 206) {
    const r = parseContentRange(resp.headers.get("content-range"));
    if (!r || r[0] !== have || r[1] !== size - 1 || (r[2] !== undefined && r[2] !== size)) {
      await resp.body?.cancel();
      throw new Discard(
        new HubError(
          "protocol",
          `resuming ${describe} from byte ${have}: ${url} answered Content-Range ` +
            `${JSON.stringify(resp.headers.get("content-range"))}, expected ` +
            `"bytes ${have}-${size - 1}/${size}"`,
          206,
        ),
      );
    }
  } else if (have > 0 && resp.status === 200) {
    have = 0; // no Range support: the whole file comes again
  } else if (have > 0 && resp.status === 416) {
    await resp.body?.cancel();
    have = 0;
    resp = await spec.get(0);
  }
  if (resp.status !== 200 && !(have > 0 && resp.status === 206)) {
    await resp.body?.cancel();
    throw new HubError(
      resp.status === 401 || resp.status === 403 ? "unauthorized" : "protocol",
      `Downloading ${describe} from ${url} failed with HTTP ${resp.status}.`,
      resp.status,
    );
  }
  const left = size - have;
  const declared = resp.headers.get("content-length");
  if (declared !== null && (!/^\d+$/.test(declared.trim()) || Number(declared) !== left)) {
    await resp.body?.cancel();
    throw new Discard(
      new HubError(
        "protocol",
        `${url} declares Content-Length ${JSON.stringify(declared)} for ${describe}, but the ` +
          `hub announced ${size} bytes (${left} still to come): refusing the download`,
        resp.status,
      ),
    );
  }
  if (!resp.body) {
    throw new HubError("protocol", `${url} answered without a body for ${describe}`, resp.status);
  }
  const hash = spec.etag.length === 64 ? createHash("sha256") : undefined;
  if (hash && have > 0) {
    await onDisk("reading", incomplete, () => hashPrefix(incomplete, have, hash));
  }
  await onDisk("truncating", incomplete, async () => {
    await file.truncate(have);
    await file.seek(have, Deno.SeekMode.Start);
  });
  let total = have;
  const reader = resp.body.getReader();
  let done = false;
  try {
    while (true) {
      const r = await reader.read();
      if (r.done) {
        done = true;
        break;
      }
      const chunk = r.value;
      if (total + chunk.length > size) {
        throw new Discard(
          new HubError(
            "protocol",
            `${url} sent more than the ${size} bytes announced for ${describe} (at least ` +
              `${total + chunk.length}): download aborted, nothing was cached`,
          ),
        );
      }
      await onDisk("writing", incomplete, async () => {
        let off = 0;
        while (off < chunk.length) off += await file.write(chunk.subarray(off));
      });
      hash?.update(chunk);
      total += chunk.length;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
  if (total < size) {
    throw new HubError(
      "protocol",
      `download of ${describe} from ${url} ended after ${total} of ${size} bytes; the bytes ` +
        `received are kept in ${incomplete} and the next download resumes from there`,
    );
  }
  if (hash) {
    const got = hash.digest("hex");
    if (got !== spec.etag.toLowerCase()) {
      throw new Discard(
        new HubError(
          "protocol",
          `integrity check failed for ${describe} from ${url}: the ${size} bytes received have ` +
            `sha256 ${got}, but the hub's ETag promised ${spec.etag}; nothing was cached`,
        ),
      );
    }
  }
  await onDisk("syncing", incomplete, () => file.sync());
}

/**
 * Downloads `spec` into `spec.blobPath` (see the module doc). Returns when the blob is complete
 * and verified, also when another process finished it first.
 *
 * @throws {HubError} `protocol` for a bad status, a short or oversized body or a sha256
 * mismatch (naming the URL); network failures and timeouts as thrown by `spec.get` or the body.
 */
export async function downloadBlob(spec: BlobDownload): Promise<void> {
  await onDisk("creating", dirname(spec.blobPath), () => ensureBlobDir(dirname(spec.blobPath)));
  const incomplete = `${spec.blobPath}.incomplete`;
  for (let attempt = 0;; attempt++) {
    const file = await onDisk(
      "opening",
      incomplete,
      () => Deno.open(incomplete, { read: true, write: true, create: true }),
    );
    try {
      // While we waited for the lock, the holder may have finished (renamed the file) or
      // given up (removed it): then `file` is not the one at `incomplete` any more.
      const mine = await onDisk("locking", incomplete, async () => {
        await file.lock(true);
        return await file.stat();
      });
      const current = await Deno.stat(incomplete).catch(() => null);
      if (current === null || current.ino !== mine.ino || current.dev !== mine.dev) {
        if (attempt < 8) continue;
        throw new HubError("protocol", `${incomplete} keeps being replaced by another process`);
      }
      if (!spec.force && await fileExists(spec.blobPath)) {
        await Deno.remove(incomplete).catch(() => {});
        return;
      }
      try {
        await fill(file, incomplete, spec);
      } catch (err) {
        if (err instanceof Discard) {
          await Deno.remove(incomplete).catch(() => {});
          throw err.error;
        }
        throw err;
      }
      await onDisk("renaming", incomplete, () => Deno.rename(incomplete, spec.blobPath));
    } finally {
      file.close(); // also releases the lock
    }
    await removeLegacyOrphans(spec.blobPath);
    return;
  }
}
