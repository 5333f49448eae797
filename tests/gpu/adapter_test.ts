/**
 * Software-adapter detection (gpu/device.ts `isSoftwareAdapter`): by the adapter's flag and by
 * its description, since `isFallbackAdapter` is not set the same way across Deno versions and
 * backends. CPU adapters get different kernel variants (llvmpipe's loop budget), so a miss
 * would be a wrong choice, not only a slow one.
 */

import { getGpu, isSoftwareAdapter } from "../../gpu/device.ts";
import { assert, assertEquals } from "../assert.ts";

/** Adapter infos as drivers report them (descriptions from wgpu/Dawn reports and Mesa). */
const SOFTWARE = [
  // Mesa llvmpipe through GL/EGL, and lavapipe through Vulkan (both say "llvmpipe").
  { description: "llvmpipe (LLVM 15.0.6, 256 bits)", vendor: "65541", device: "0" },
  { description: "", device: "llvmpipe (LLVM 17.0.6, 256 bits)", vendor: "mesa" },
  { description: "Mesa lavapipe", vendor: "" },
  { description: "softpipe", vendor: "Mesa" },
  { description: "SwiftShader Device (Subzero)", vendor: "Google" },
  { description: "SwiftShader Device (LLVM 10.0.0)", vendor: "google", architecture: "" },
  { description: "Microsoft Basic Render Driver", vendor: "5140", architecture: "" },
  // The flag alone, whatever the description says.
  { description: "Some future CPU rasterizer", isFallbackAdapter: true },
];

const HARDWARE = [
  { description: "NVIDIA H100 80GB HBM3", vendor: "4318", architecture: "" },
  { description: "NVIDIA GeForce RTX 4090", vendor: "nvidia", architecture: "lovelace" },
  { description: "AMD Radeon RX 7900 XTX (RADV NAVI31)", vendor: "4098" },
  { description: "Intel(R) Arc(tm) A770 Graphics (DG2)", vendor: "intel" },
  { description: "Apple M2 Max", vendor: "apple", architecture: "metal-3" },
  { description: "Microsoft Direct3D12 (NVIDIA RTX A6000)", vendor: "4318" },
  { description: "", device: "", vendor: "", architecture: "" },
  { description: "Mesa Intel(R) UHD Graphics 620 (KBL GT2)", isFallbackAdapter: false },
  {},
];

Deno.test("isSoftwareAdapter: llvmpipe, lavapipe, softpipe, SwiftShader, WARP, or the flag", () => {
  for (const info of SOFTWARE) assert(isSoftwareAdapter(info), JSON.stringify(info));
});

Deno.test("isSoftwareAdapter: real GPUs (and unknown adapters) are not software", () => {
  for (const info of HARDWARE) assert(!isSoftwareAdapter(info), JSON.stringify(info));
});

Deno.test("isSoftwareAdapter: the description wins over a false or missing flag", () => {
  assert(isSoftwareAdapter({ description: "llvmpipe (LLVM 15.0.6)", isFallbackAdapter: false }));
  assert(isSoftwareAdapter({ description: "LLVMPIPE" }), "case-insensitive");
});

Deno.test("Gpu.info.isFallbackAdapter agrees with isSoftwareAdapter on this machine's adapter", async () => {
  const gpu = await getGpu();
  const adapterInfo = gpu.adapter.info as unknown as Record<string, unknown>;
  const expected = isSoftwareAdapter({
    description: String(adapterInfo.description ?? ""),
    device: String(adapterInfo.device ?? ""),
    vendor: String(adapterInfo.vendor ?? ""),
    architecture: String(adapterInfo.architecture ?? ""),
    isFallbackAdapter: adapterInfo.isFallbackAdapter === true,
  });
  assertEquals(gpu.info.isFallbackAdapter, expected, gpu.info.description);
  // Where tests run without a GPU (Mesa llvmpipe/lavapipe), both say software.
  if (/llvmpipe/i.test(gpu.info.description)) assert(gpu.info.isFallbackAdapter);
});
