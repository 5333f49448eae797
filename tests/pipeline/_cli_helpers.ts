/**
 * Helpers of the CLI tests: small run configs on the shipped tiny GPT-2 and corpus, `pipeline.ts`
 * as a child process (line by line, with waits on its output), and byte comparisons of outputs.
 * @module
 */

import { join } from "../../util/path.ts";
import { mulberry32 } from "../../util/rng.ts";
import { assert } from "../assert.ts";

/** Absolute path of `pipeline.ts`. */
export const PIPELINE = new URL("../../pipeline.ts", import.meta.url).pathname;
/** The shipped tiny GPT-2 (d_model 128, 4 layers, byte-level tokenizer). */
export const MODEL = new URL("../../data/tiny-shakespeare-gpt2", import.meta.url).pathname;
/** The shipped corpus. */
export const CORPUS = new URL("../../data/tinyshakespeare.txt", import.meta.url).pathname;

/**
 * A small single-SAE run config (a few seconds): context 32, d_sae 256, batches of 256 tokens,
 * 24 steps, 3 checkpoints; paths under `dir`. `extra` is merged in last.
 */
export function smallConfig(dir: string, extra: Record<string, unknown> = {}) {
  return {
    model_name: MODEL,
    hook_name: "blocks.1.hook_resid_pre",
    dataset_path: CORPUS,
    context_size: 32,
    prepend_bos: true,
    store_batch_size_prompts: 8,
    n_batches_in_buffer: 16,
    train_batch_size_tokens: 256,
    training_tokens: 256 * 24,
    lr: 0.002,
    n_checkpoints: 3,
    seed: 7,
    checkpoint_path: join(dir, "ck"),
    output_path: join(dir, "out"),
    sae: { architecture: "topk", d_in: 128, d_sae: 256, k: 8 },
    logger: { log_to_wandb: false, wandb_log_frequency: 4 },
    ...extra,
  };
}

/** {@link smallConfig} with two SAEs from one forward (SAELens's multi-SAE form). */
export function smallMultiConfig(dir: string, extra: Record<string, unknown> = {}) {
  const { sae: _s, hook_name: _h, ...rest } = smallConfig(dir);
  return {
    ...rest,
    saes: {
      a: { architecture: "topk", d_in: 128, d_sae: 256, k: 8 },
      b: { architecture: "standard", d_in: 128, d_sae: 512, l1_coefficient: 2 },
    },
    hook_names: { a: "blocks.1.hook_resid_pre", b: "blocks.2.hook_resid_pre" },
    ...extra,
  };
}

/** Writes `cfg` as YAML-compatible JSON (JSON is YAML) to `dir/name`; returns the path. */
export async function writeConfig(dir: string, name: string, cfg: unknown): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
  return path;
}

/** A `pipeline.ts` child process whose output is collected line by line. */
export class CliProcess {
  /** The child. */
  readonly child: Deno.ChildProcess;
  /** stdout lines so far. */
  readonly stdout: string[] = [];
  /** stderr lines so far. */
  readonly stderr: string[] = [];
  readonly #done: Promise<[void, void]>;
  #waiters: { re: RegExp; resolve: (line: string) => boolean }[] = [];

  /** Starts `deno run -A pipeline.ts …args` with `env` added to the environment. */
  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", PIPELINE, ...args],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      env,
    }).spawn();
    this.#done = Promise.all([
      this.#pump(this.child.stdout, this.stdout),
      this.#pump(this.child.stderr, this.stderr),
    ]);
  }

  async #pump(stream: ReadableStream<Uint8Array>, lines: string[]): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        this.#line(rest.slice(0, i), lines);
        rest = rest.slice(i + 1);
      }
    }
    if (rest) this.#line(rest, lines);
  }

  #line(line: string, lines: string[]): void {
    lines.push(line);
    this.#waiters = this.#waiters.filter((w) => !w.re.test(line) || !w.resolve(line));
  }

  /**
   * Resolves with the `nth` line (stdout and stderr together, default the first) matching `re`,
   * or rejects after `ms` or when the process ends without it.
   */
  waitFor(re: RegExp, ms = 60_000, nth = 1): Promise<string> {
    const seen = [...this.stdout, ...this.stderr].filter((l) => re.test(l));
    if (seen.length >= nth) return Promise.resolve(seen[nth - 1]);
    let missing = nth - seen.length;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.re !== re);
        reject(new Error(`no line ${nth} matching ${re} within ${ms} ms:\n${this.output()}`));
      }, ms);
      this.#waiters.push({
        re,
        resolve: (l) => {
          if (--missing > 0) return false;
          clearTimeout(timer);
          resolve(l);
          return true;
        },
      });
      // The process may end without ever printing it.
      this.status.then(() => {
        const w = this.#waiters.find((x) => x.re === re);
        if (!w) return;
        this.#waiters = this.#waiters.filter((x) => x !== w);
        clearTimeout(timer);
        reject(
          new Error(`the process ended without line ${nth} matching ${re}:\n${this.output()}`),
        );
      });
    });
  }

  /** The exit status, after all output was read. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#done.then(() => this.child.status);
  }

  /** All output, for failure messages. */
  output(): string {
    return `--- stdout\n${this.stdout.join("\n")}\n--- stderr\n${this.stderr.join("\n")}`;
  }
}

/** Runs `pipeline.ts …args` to the end. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string[]; stderr: string[]; output: string }> {
  const p = new CliProcess(args, env);
  const { code } = await p.status;
  return { code, stdout: p.stdout, stderr: p.stderr, output: p.output() };
}

/** Throws unless files `a` and `b` hold the same bytes. */
export async function assertSameBytes(a: string, b: string, what: string): Promise<void> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  let first = -1;
  if (x.length === y.length) {
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== y[i]) {
        first = i;
        break;
      }
    }
  }
  assert(
    x.length === y.length && first < 0,
    `${what}: ${a} (${x.length} B) and ${b} (${y.length} B) differ` +
      (first >= 0 ? ` from byte ${first}` : ""),
  );
}

/** A seeded PRNG (mulberry32) for kill points; the seed comes from SAEFLOW_TEST_SEED if set. */
export function testRandom(): { seed: number; next: () => number } {
  const env = Deno.env.get("SAEFLOW_TEST_SEED");
  const seed = env !== undefined ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  return { seed, next: mulberry32(seed) };
}

/** The only subfolder of `dir` (a run folder under a checkpoint path). */
export async function onlySubfolder(dir: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isDirectory) names.push(e.name);
  assert(names.length === 1, `expected one run folder in ${dir}, found ${names.join(", ")}`);
  return join(dir, names[0]);
}
