/**
 * A small builder for stage graphs a user writes: a chain of named stages (any Web Streams
 * `ReadableWritablePair`, e.g. saeflow's stages or your own `TransformStream`) from a source to
 * a sink. What it adds to plain `pipeThrough`: an error names the stage it came from, one
 * `AbortSignal` stops the whole chain, and every stage's chunk count is kept.
 *
 * ```ts ignore
 * const stats = await graph("docs", source({ datasetPath }))
 *   .through("tokenize", tokenize({ contextSize: 64, blockSize: 8, encode }))
 *   .through("hook", hook(model, { hooks }))
 *   .through("my filter", new TransformStream({ transform(b, c) { if (b.rows > 0) c.enqueue(b); } }))
 *   .through("buffer", new ActivationBuffer({ … }))
 *   .through("step", saeStep({ units }))
 *   .run((event) => console.log(event.type), { signal });
 * ```
 * @module
 */

import { SaeflowError } from "../util/errors.ts";
import { PipelineError } from "./errors.ts";

/** Chunks that passed each stage, by stage name. */
export type GraphStats = Map<string, number>;

/** An error in a stage of a {@link StageGraph}, naming the stage; `cause` is the original. */
export class StageFailure extends SaeflowError {
  /** The name of the stage that failed. */
  readonly stage: string;
  /** Wraps `cause` (its message is kept after the stage name). */
  constructor(stage: string, cause: unknown) {
    super(
      `stage ${JSON.stringify(stage)} failed: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
    this.stage = stage;
  }
}

/**
 * The chunks of `input`, counted under `name`; an error out of `input` becomes a
 * {@link StageFailure} naming `name` unless an earlier stage already named it.
 */
function observe<U>(name: string, input: ReadableStream<U>, stats: GraphStats): ReadableStream<U> {
  const reader = input.getReader();
  stats.set(name, 0);
  return new ReadableStream<U>({
    async pull(controller) {
      let r: ReadableStreamReadResult<U>;
      try {
        r = await reader.read();
      } catch (err) {
        controller.error(err instanceof StageFailure ? err : new StageFailure(name, err));
        return;
      }
      if (r.done) controller.close();
      else {
        stats.set(name, stats.get(name)! + 1);
        controller.enqueue(r.value);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** A chain of named stages ending in `T` chunks (see the module doc). */
export class StageGraph<T> {
  readonly #readable: ReadableStream<T>;
  readonly #names: string[];
  readonly #stats: GraphStats;

  /** @internal Use {@link graph}. */
  constructor(readable: ReadableStream<T>, names: string[], stats: GraphStats) {
    this.#readable = readable;
    this.#names = names;
    this.#stats = stats;
  }

  /** Appends a stage named `name`. */
  through<U>(name: string, stage: ReadableWritablePair<U, T>): StageGraph<U> {
    if (this.#names.includes(name)) throw new PipelineError(`graph: two stages named ${name}`);
    const out = observe(name, this.#readable.pipeThrough(stage), this.#stats);
    return new StageGraph(out, [...this.#names, name], this.#stats);
  }

  /** The names of the stages, in order. */
  get stages(): readonly string[] {
    return this.#names;
  }

  /** The graph's output stream (to compose further by hand). */
  get readable(): ReadableStream<T> {
    return this.#readable;
  }

  /**
   * Runs the graph into `sink` (a function called per chunk, or a WritableStream) until the
   * source ends or `signal` aborts; resolves with the chunk counts. A stage's error rejects
   * with a {@link StageFailure} naming it (the first one, when the error travels down).
   */
  async run(
    sink: ((chunk: T) => void | Promise<void>) | WritableStream<T> = () => {},
    options: { signal?: AbortSignal } = {},
  ): Promise<GraphStats> {
    const dest = typeof sink === "function"
      ? new WritableStream<T>({ write: (c) => sink(c) })
      : sink;
    try {
      await this.#readable.pipeTo(dest, { signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted && err === options.signal.reason) return this.#stats;
      throw err instanceof StageFailure ? err : new StageFailure("sink", err);
    }
    return this.#stats;
  }
}

/**
 * Starts a graph at `readable` (a source stage), named `name`.
 *
 * @example
 * ```ts
 * import { graph } from "./graph.ts";
 * const out: number[] = [];
 * const stats = await graph("numbers", ReadableStream.from([1, 2, 3, 4]))
 *   .through("double", new TransformStream<number, number>({ transform: (x, c) => c.enqueue(2 * x) }))
 *   .through("odd out", new TransformStream<number, number>({ transform: (x, c) => { if (x > 2) c.enqueue(x); } }))
 *   .run((x) => { out.push(x); });
 * if (out.join() !== "4,6,8" || stats.get("double") !== 4 || stats.get("odd out") !== 3) throw new Error();
 * ```
 */
export function graph<T>(name: string, readable: ReadableStream<T>): StageGraph<T> {
  const stats: GraphStats = new Map();
  return new StageGraph(observe(name, readable, stats), [name], stats);
}
