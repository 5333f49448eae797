// The GPU architecture registry (a user-defined architecture end to end, duplicate and unknown
// names) and SAE.fromConfig's SAELens base initialisation.
import { getGpu } from "../../gpu/device.ts";
import { unary } from "../../gpu/kernels/elementwise.ts";
import {
  getSaeArchitecture,
  listSaeArchitectures,
  registerSaeArchitecture,
} from "../../sae/architectures/mod.ts";
import { createSAEConfig } from "../../sae/config.ts";
import { SAE } from "../../sae/sae.ts";
import { SaeError } from "../../sae/errors.ts";
import { assert, assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { randomInput, take, upload } from "./_sae_helpers.ts";

await getGpu();

Deno.test("architectures: the built-ins are registered", () => {
  assertEquals(listSaeArchitectures().slice(0, 8), [
    "standard",
    "gated",
    "jumprelu",
    "topk",
    "transcoder",
    "skip_transcoder",
    "jumprelu_transcoder",
    "jumprelu_skip_transcoder",
  ]);
});

Deno.test("architectures: a user architecture runs, saves and loads; duplicates are refused", async () => {
  const standard = getSaeArchitecture("standard");
  // "abs" SAE: f = |h| (not a real architecture; easy to check by hand).
  registerSaeArchitecture("test_abs_sae", {
    paramShapes: standard.paramShapes,
    encode(ctx) {
      const p = ctx.params;
      const id = ctx.hook;
      return standard.encode({
        ...ctx,
        params: p,
        hooksActive: true,
        hook: (name, t) => {
          if (name !== "hook_sae_acts_pre") return id(name, t);
          // Replace ReLU's input by |h| so that ReLU(|h|) = |h|.
          return id(name, unary("abs", t, { out: t }));
        },
      });
    },
  }, { inferenceFields: [], trainingFields: null, exportsAs: "test_abs_sae" });
  assertThrows(
    () => registerSaeArchitecture("test_abs_sae", standard),
    SaeError,
    'SAE architecture "test_abs_sae" is already registered',
  );
  assertThrows(
    () => registerSaeArchitecture("test_without_config", standard),
    SaeError,
    "has no config",
  );
  const sae = await SAE.fromParams({ architecture: "test_abs_sae", dIn: 2, dSae: 2 }, {
    W_enc: [1, 0, 0, 1],
    b_enc: [0, 0],
    W_dec: [1, 0, 0, 1],
    b_dec: [0, 0],
  });
  using x = upload([-3, 2], [1, 2]);
  assertAllClose(await take(sae.encode(x)), [3, 2]);
  const dir = await Deno.makeTempDir();
  await sae.saveModel(dir);
  const loaded = await SAE.loadFromDisk(dir);
  assertAllClose(await take(loaded.forward(x)), [3, 2]);
  loaded.dispose();
  sae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("architectures: an architecture without a GPU implementation is an error listing them", () => {
  const cfg = createSAEConfig({ architecture: "standard", dIn: 2, dSae: 2 });
  assertThrows(
    () => new SAE({ ...cfg, architecture: "batchtopk" }, {}),
    SaeError,
    'architecture "batchtopk" has no GPU implementation; registered: standard, gated',
  );
});

Deno.test("SAE.fromConfig: SAELens base init (Kaiming-uniform W_dec, W_enc = W_decᵀ, zeros)", async () => {
  const sae = await SAE.fromConfig({ architecture: "jumprelu", dIn: 6, dSae: 10 }, { seed: 3 });
  const s = await sae.stateDict();
  const bound = Math.sqrt(6 / 6);
  assert(s.W_dec.data.every((v) => Math.abs(v) <= bound) && s.W_dec.data.some((v) => v !== 0));
  for (let i = 0; i < 10; i++) {
    for (let j = 0; j < 6; j++) assertEquals(s.W_enc.data[j * 10 + i], s.W_dec.data[i * 6 + j]);
  }
  for (const k of ["b_enc", "b_dec", "threshold"]) assert(s[k].data.every((v) => v === 0), k);
  sae.dispose();
  const tc = await SAE.fromConfig({
    architecture: "skip_transcoder",
    dIn: 6,
    dSae: 10,
    dOut: 3,
    applyBDecToInput: false,
  });
  const t = await tc.stateDict();
  assertEquals([t.W_dec.shape, t.W_enc.shape, t.W_skip.shape], [[10, 3], [6, 10], [3, 6]]);
  assert(t.W_enc.data.every((v) => Math.abs(v) <= Math.sqrt(6 / 10)), "W_enc fan_in d_sae");
  assert(t.W_skip.data.every((v) => v === 0));
  using x = upload(randomInput(2, 6, 1), [2, 6]);
  const y = tc.forward(x);
  assertEquals([...y.shape], [2, 3]);
  y.dispose();
  tc.dispose();
});
