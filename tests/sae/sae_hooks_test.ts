// SAE hook points: firing order and shapes, caching, replacement, the SAELens error-term
// contract (editing acts_post changes the output but not hook_sae_error), model-style prefixed
// runners, and replacement errors. Tolerances as in SAELens' test: rtol 1e-2 (changed) / 1e-4.
import { getGpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { fill } from "../../gpu/kernels/elementwise.ts";
import { HookRegistry } from "../../gpu/hooks.ts";
import { forwardRef } from "../../sae/reference/mod.ts";
import { SAE_HOOK_NAMES } from "../../sae/forward.ts";
import { SaeError } from "../../sae/errors.ts";
import { assert, assertAllClose, assertEquals, assertThrows } from "../assert.ts";
import { randomInput, randomSae, take, upload } from "./_sae_helpers.ts";

await getGpu();

/** Adds a caching hook at every SAE hook point of `hooks` (names optionally prefixed). */
function cacheAll(hooks: HookRegistry, prefix = "") {
  const order: string[] = [];
  const cache = new Map<string, Promise<Float32Array>>();
  const shapes = new Map<string, number[]>();
  for (const name of SAE_HOOK_NAMES) {
    hooks.add(prefix + name, (t, { name: n }) => {
      order.push(n);
      shapes.set(n, [...t.shape]);
      const c = t.clone();
      cache.set(n, c.toArray().then((v) => (c.dispose(), v as Float32Array)));
    });
  }
  return { order, cache, shapes };
}

Deno.test("SAE hooks: all six fire in SAELens order with [batch, pos, d] shapes", async () => {
  const { sae } = await randomSae({ architecture: "standard" }, 4);
  sae.useErrorTerm = true;
  const { order, shapes } = cacheAll(sae.hooks);
  using x = upload(randomInput(6, 6, 1), [2, 3, 6]);
  await take(sae.forward(x));
  assertEquals(order, [
    "hook_sae_input",
    "hook_sae_acts_pre",
    "hook_sae_acts_post",
    "hook_sae_recons",
    "hook_sae_error",
    "hook_sae_output",
  ]);
  assertEquals(shapes.get("hook_sae_acts_post"), [2, 3, 8]);
  assertEquals(shapes.get("hook_sae_error"), [2, 3, 6]);
  sae.dispose();
});

Deno.test("SAE hooks: ablating acts_post to 20 changes the output, hook_sae_error is unchanged", async () => {
  const { sae, params } = await randomSae({ architecture: "standard" }, 8);
  sae.useErrorTerm = true;
  const x = randomInput(4, 6, 2);
  using xt = upload(x, [4, 6]);
  const clean = cacheAll(sae.hooks);
  const out0 = await take(sae.forward(xt));
  const err0 = await clean.cache.get("hook_sae_error")!;
  assertAllClose(out0, x, 1e-5, 1e-5);
  sae.hooks.clear();
  // Edit in place (no return) …
  sae.hooks.add("hook_sae_acts_post", (t) => void fill(t, 20));
  const edited = cacheAll(sae.hooks);
  const out1 = await take(sae.forward(xt));
  const err1 = await edited.cache.get("hook_sae_error")!;
  assertAllClose(err1, err0, 0, 1e-4, "hook_sae_error must not see the edit");
  const diff = out1.reduce((m, v, i) => Math.max(m, Math.abs(v - out0[i]) / Math.abs(out0[i])), 0);
  assert(diff > 1e-2, `the edit must change the output (max rel diff ${diff})`);
  // Expected output: decode(all-20 acts) + clean error, from the reference.
  const ref = forwardRef(sae.cfg, params, x, 4, {
    useErrorTerm: true,
    editFeatureActs: (f) => f.fill(20),
  });
  assertAllClose(out1, ref.output, 1e-3, 1e-4);
  sae.hooks.clear();
  // … or return a replacement tensor: same result.
  sae.hooks.add("hook_sae_acts_post", (t) => fill(Tensor.empty(t.shape), 20));
  assertAllClose(await take(sae.forward(xt)), ref.output, 1e-3, 1e-4);
  sae.dispose();
});

Deno.test("SAE hooks: a model's prefixed runner sees '<hook>.hook_sae_*' and can replace acts", async () => {
  const { sae } = await randomSae({ architecture: "jumprelu" }, 3);
  const model = new HookRegistry();
  const prefix = "blocks.8.hook_resid_pre.";
  const { order } = cacheAll(model, prefix);
  model.add(prefix + "hook_sae_acts_post", (t) => Tensor.zeros(t.shape));
  using x = upload(randomInput(3, 6, 5), [3, 6]);
  const out = await take(sae.forward(x, { hooks: model.runner(prefix) }));
  assertEquals(order.slice(0, 2), [prefix + "hook_sae_input", prefix + "hook_sae_acts_pre"]);
  // All acts zeroed: the output is b_dec in every row.
  const bDec = await sae.b_dec.toArray();
  assertAllClose(out, [...bDec, ...bDec, ...bDec], 1e-6);
  sae.dispose();
});

Deno.test("SAE hooks: a replacement of the wrong shape is an error naming the hook", async () => {
  const { sae } = await randomSae({ architecture: "standard" }, 3);
  sae.hooks.add("hook_sae_acts_pre", () => Tensor.zeros([3, 7]));
  using x = upload(randomInput(3, 6, 5), [3, 6]);
  assertThrows(
    () => sae.forward(x),
    SaeError,
    "hook hook_sae_acts_pre: the replacement is Tensor(f32, [3, 7]), expected a live f32 tensor of shape [3, 8]",
  );
  sae.dispose();
});
