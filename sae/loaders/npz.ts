/**
 * A minimal reader of numpy `.npz` files (a zip of `.npy` arrays; stored or deflated members,
 * zip64 included) and of `.npy` arrays, for Gemma Scope 1 weights. Float arrays only
 * (`f2`, `f4`, `f8`, either byte order; C or Fortran order), returned as f32.
 * @module
 */

import { f16ToF32 } from "../../io/dtypes.ts";
import type { HostStateDict, HostTensor } from "../sae_io.ts";
import { SaeLoadError } from "../errors.ts";
import { regularFileSize } from "../../util/files.ts";

const EOCD = 0x06054b50, CDH = 0x02014b50, LFH = 0x04034b50;
const ZIP64_LOCATOR = 0x07064b50, ZIP64_EOCD = 0x06064b50;

interface Entry {
  name: string;
  method: number;
  compressedSize: number;
  localOffset: number;
}

async function readAt(file: Deno.FsFile, offset: number, length: number, path: string) {
  const buf = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) {
      throw new SaeLoadError(`${path}: truncated zip (wanted ${length} bytes at ${offset})`);
    }
    got += n;
  }
  return buf;
}

function u64(v: DataView, at: number): number {
  return Number(v.getBigUint64(at, true));
}

function zip64Extra(extra: DataView, sizes: { c: number; u: number; off: number }): void {
  // Zip64 extended info (id 1) lists, in order, only the fields that are 0xFFFFFFFF.
  for (let p = 0; p + 4 <= extra.byteLength;) {
    const id = extra.getUint16(p, true), len = extra.getUint16(p + 2, true);
    if (id === 1) {
      let q = p + 4;
      if (sizes.u === 0xffffffff) (sizes.u = u64(extra, q)), (q += 8);
      if (sizes.c === 0xffffffff) (sizes.c = u64(extra, q)), (q += 8);
      if (sizes.off === 0xffffffff) sizes.off = u64(extra, q);
      return;
    }
    p += 4 + len;
  }
}

async function centralDirectory(file: Deno.FsFile, size: number, path: string): Promise<Entry[]> {
  const tailLen = Math.min(size, 65557 + 20);
  const tail = await readAt(file, size - tailLen, tailLen, path);
  const tv = new DataView(tail.buffer);
  let e = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD) {
      e = i;
      break;
    }
  }
  if (e < 0) throw new SaeLoadError(`${path}: not a zip file (no end of central directory)`);
  let count = tv.getUint16(e + 10, true);
  let cdSize = tv.getUint32(e + 12, true);
  let cdOffset = tv.getUint32(e + 16, true);
  if (e >= 20 && tv.getUint32(e - 20, true) === ZIP64_LOCATOR) {
    const recOffset = u64(tv, e - 20 + 8);
    const rec = new DataView((await readAt(file, recOffset, 56, path)).buffer);
    if (rec.getUint32(0, true) !== ZIP64_EOCD) throw new SaeLoadError(`${path}: bad zip64 record`);
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  const cd = await readAt(file, cdOffset, cdSize, path);
  const v = new DataView(cd.buffer);
  const entries: Entry[] = [];
  for (let p = 0, k = 0; k < count; k++) {
    if (v.getUint32(p, true) !== CDH) throw new SaeLoadError(`${path}: bad central directory`);
    const nameLen = v.getUint16(p + 28, true), extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    const sizes = {
      c: v.getUint32(p + 20, true),
      u: v.getUint32(p + 24, true),
      off: v.getUint32(p + 42, true),
    };
    zip64Extra(new DataView(cd.buffer, p + 46 + nameLen, extraLen), sizes);
    entries.push({
      name: new TextDecoder().decode(cd.subarray(p + 46, p + 46 + nameLen)),
      method: v.getUint16(p + 10, true),
      compressedSize: sizes.c,
      localOffset: sizes.off,
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

async function inflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Parses one `.npy` array (float dtypes) into an f32 tensor.
 *
 * @example
 * ```ts
 * import { parseNpy } from "./npz.ts";
 * const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
 * const text = header.padEnd(69) + "\n"; // 10 + 70 header bytes: 80, a multiple of 16
 * const bytes = new Uint8Array(80 + 8);
 * bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 70, 0]);
 * bytes.set(new TextEncoder().encode(text), 10);
 * new DataView(bytes.buffer).setFloat32(80, 1.5, true);
 * if (parseNpy(bytes, "x.npy").data[0] !== 1.5) throw new Error();
 * ```
 */
export function parseNpy(bytes: Uint8Array, source: string): HostTensor {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) {
    throw new SaeLoadError(`${source}: not a .npy array (bad magic)`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const hlen = major === 1 ? v.getUint16(8, true) : v.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + hlen));
  const descr = /'descr':\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const shapeM = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shapeM) throw new SaeLoadError(`${source}: unreadable .npy header ${header}`);
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = shapeM[1].split(",").map((s) => s.trim()).filter((s) => s).map(Number);
  const [, order, kind, sizeText] = descr;
  const size = Number(sizeText), little = order !== ">";
  if (kind !== "f" || ![2, 4, 8].includes(size)) {
    throw new SaeLoadError(`${source}: dtype ${descr[0]} is not supported (float arrays only)`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + hlen;
  if (bytes.length - dataStart < count * size) {
    throw new SaeLoadError(
      `${source}: ${count * size} data bytes expected, ${bytes.length - dataStart} found`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset + dataStart, count * size);
  let data: Float32Array;
  const raw = bytes.subarray(dataStart, dataStart + count * size);
  if (size === 4 && little) data = new Float32Array(raw.slice().buffer);
  else if (size === 8 && little) data = Float32Array.from(new Float64Array(raw.slice().buffer));
  else if (size === 4) {
    data = Float32Array.from({ length: count }, (_, i) => dv.getFloat32(4 * i, little));
  } else if (size === 8) {
    data = Float32Array.from({ length: count }, (_, i) => dv.getFloat64(8 * i, little));
  } else {data = f16ToF32(Uint16Array.from({ length: count }, (_, i) =>
      dv.getUint16(2 * i, little)));}
  if (fortran && shape.length > 1) {
    if (shape.length !== 2) {
      throw new SaeLoadError(`${source}: Fortran order of rank > 2 is not supported`);
    }
    const [r, c] = shape, t = new Float32Array(count);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[i * c + j] = data[j * r + i];
    data = t;
  }
  return { shape, data };
}

/** Reads every array of an `.npz` file, keyed by member name without `.npy`. */
export async function readNpz(path: string): Promise<HostStateDict> {
  let file: Deno.FsFile;
  // A FIFO would block the read forever: only regular files are opened.
  await regularFileSize(path, (m, cause) => new SaeLoadError(m, { cause }));
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    throw new SaeLoadError(`${path}: cannot open (${(err as Error).message})`, { cause: err });
  }
  try {
    const size = (await file.stat()).size;
    const out: HostStateDict = {};
    for (const e of await centralDirectory(file, size, path)) {
      const lh = new DataView((await readAt(file, e.localOffset, 30, path)).buffer);
      if (lh.getUint32(0, true) !== LFH) {
        throw new SaeLoadError(`${path}: bad local header of ${e.name}`);
      }
      const dataAt = e.localOffset + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
      let bytes: Uint8Array = await readAt(file, dataAt, e.compressedSize, path);
      if (e.method === 8) bytes = await inflateRaw(bytes);
      else if (e.method !== 0) {
        throw new SaeLoadError(
          `${path}: member ${e.name} uses zip method ${e.method} (stored or deflate only)`,
        );
      }
      out[e.name.replace(/\.npy$/, "")] = parseNpy(bytes, `${path}:${e.name}`);
    }
    return out;
  } finally {
    file.close();
  }
}
