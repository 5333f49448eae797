/**
 * Where and as what a W&B run is created, from the runner's `LoggingConfig` fields and the
 * environment variables the Python SDK reads:
 *
 * | setting | source, first that is set |
 * | --- | --- |
 * | mode | `WANDB_MODE` (`online`/`run`, `offline`/`dryrun`, `disabled`); `WANDB_DISABLED=true` → disabled; else online |
 * | API key | option `apiKey`, `WANDB_API_KEY`, then the `~/.netrc` (or `$NETRC`) entry for the server's host, as `wandb login` writes it |
 * | server | option `baseUrl`, `WANDB_BASE_URL`, `https://api.wandb.ai` |
 * | project | `wandb_project`, `WANDB_PROJECT`, `"uncategorized"` |
 * | entity | `wandb_entity`, `WANDB_ENTITY`, else the API key's default entity (the server decides) |
 * | run id | `wandb_id`, `WANDB_RUN_ID`, else 8 random characters `[a-z0-9]` (the SDK's `generate_id`) |
 * | display name | the `start` event's run name, `run_name`, `WANDB_NAME` |
 *
 * Config values win over environment variables, as `wandb.init(project=…, entity=…, id=…)`
 * arguments do in SAELens. In offline mode nothing is sent (saeflow does not write the SDK's
 * offline run files; the JSONL metrics file is the local record).
 * @module
 */

import { homeDir, readEnv } from "../util/env.ts";
import { join } from "../util/path.ts";
import { LoggingError, type LoggingSettings } from "./types.ts";

/** W&B mode after resolving `WANDB_MODE` / `WANDB_DISABLED`. */
export type WandbMode = "online" | "offline" | "disabled";

/** Overrides and the environment for {@link resolveWandbSettings}. */
export interface WandbEnvOptions {
  /** Reads an environment variable (default: `readEnv`, unset or blank → undefined). */
  env?: (name: string) => string | undefined;
  /** API key (wins over `WANDB_API_KEY`). */
  apiKey?: string;
  /** Server URL (wins over `WANDB_BASE_URL`). */
  baseUrl?: string;
  /** Mode (wins over `WANDB_MODE`). */
  mode?: WandbMode;
  /** The netrc file to read an API key from; null skips it (default `$NETRC`, else `~/.netrc`). */
  netrcPath?: string | null;
}

/** Everything needed to create and stream a run. */
export interface WandbRunSettings {
  mode: WandbMode;
  /** Present in online mode. */
  apiKey: string | null;
  /** Server URL without a trailing slash. */
  baseUrl: string;
  project: string;
  /** null: the API key's default entity. */
  entity: string | null;
  runId: string;
  /** Display name (may be replaced by the `start` event's run name). */
  displayName: string | null;
}

const DEFAULT_BASE_URL = "https://api.wandb.ai";
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
/** Characters W&B refuses in project names and run ids. */
const FORBIDDEN = /[/\\#?%:\s]/;

/**
 * A new random run id: 8 characters from `[a-z0-9]`, like the Python SDK's `generate_id()`.
 *
 * @example
 * ```ts
 * import { generateRunId } from "./wandb_settings.ts";
 * if (!/^[a-z0-9]{8}$/.test(generateRunId())) throw new Error("bad id");
 * ```
 */
export function generateRunId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  // 252 = 7·36: reject the top values so every character is equally likely.
  let id = "";
  for (let i = 0; id.length < 8; i++) {
    if (i >= bytes.length) {
      crypto.getRandomValues(bytes);
      i = 0;
    }
    if (bytes[i] < 252) id += ID_ALPHABET[bytes[i] % 36];
  }
  return id;
}

/**
 * The password of the netrc entry for `host` (or of `default`), or undefined.
 *
 * @example
 * ```ts
 * import { netrcPassword } from "./wandb_settings.ts";
 * const text = "machine api.wandb.ai\n  login user\n  password abc123\n";
 * if (netrcPassword(text, "api.wandb.ai") !== "abc123") throw new Error("not found");
 * ```
 */
export function netrcPassword(text: string, host: string): string | undefined {
  const tokens = text.split(/\s+/).filter((t) => t.length > 0);
  let current: string | null = null, fallback: string | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === "machine") current = tokens[++i] ?? null;
    else if (t === "default") current = "";
    else if (t === "macdef") {
      current = null; // macro bodies run to a blank line; their words are not credentials
    } else if (t === "password" && current !== null) {
      const value = tokens[++i];
      if (current === host) return value;
      if (current === "") fallback ??= value;
    }
  }
  return fallback;
}

function readNetrc(path: string | null | undefined, env: (n: string) => string | undefined) {
  const file = path === undefined ? env("NETRC") ?? join(homeDir(), ".netrc") : path;
  if (file === null) return undefined;
  try {
    const info = Deno.statSync(file);
    if (!info.isFile || info.size > 1 << 20) return undefined;
    return Deno.readTextFileSync(file);
  } catch {
    return undefined; // missing, unreadable, or no --allow-read: no key from netrc
  }
}

function parseMode(env: (n: string) => string | undefined): WandbMode {
  const disabled = env("WANDB_DISABLED")?.toLowerCase();
  if (disabled === "true" || disabled === "1" || disabled === "yes") return "disabled";
  const mode = env("WANDB_MODE")?.toLowerCase();
  if (mode === undefined || mode === "online" || mode === "run") return "online";
  if (mode === "offline" || mode === "dryrun") return "offline";
  if (mode === "disabled") return "disabled";
  throw new LoggingError(
    `WANDB_MODE is ${JSON.stringify(mode)}; expected online, offline or disabled`,
  );
}

function checkName(what: string, value: string): string {
  if (value.length === 0 || value.length > 128 || FORBIDDEN.test(value)) {
    throw new LoggingError(
      `W&B ${what} ${JSON.stringify(value)} is not valid; expected 1-128 characters without ` +
        "spaces or any of / \\ # ? % :",
    );
  }
  return value;
}

function checkBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new LoggingError(
      `WANDB_BASE_URL ${JSON.stringify(raw)} is not a URL; expected http(s)://host`,
    );
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.search || url.hash) {
    throw new LoggingError(
      `WANDB_BASE_URL ${JSON.stringify(raw)} is not valid; expected an http(s) URL without query`,
    );
  }
  return url.href.replace(/\/+$/, "");
}

/**
 * Resolves the run settings (see the module doc). Throws a {@link LoggingError} in online mode
 * without an API key, and for an invalid mode, server URL, project, entity or run id.
 *
 * @example
 * ```ts
 * import { resolveWandbSettings } from "./wandb_settings.ts";
 * const env: Record<string, string> = { WANDB_API_KEY: "k", WANDB_ENTITY: "me" };
 * const s = resolveWandbSettings(
 *   { logToWandb: true, wandbProject: "sae_lens_training", wandbId: "run1" },
 *   { env: (n) => env[n], netrcPath: null },
 * );
 * if (s.entity !== "me" || s.runId !== "run1" || s.baseUrl !== "https://api.wandb.ai") throw new Error();
 * ```
 */
export function resolveWandbSettings(
  settings: LoggingSettings,
  options: WandbEnvOptions = {},
): WandbRunSettings {
  const env = options.env ?? readEnv;
  const mode = options.mode ?? parseMode(env);
  const baseUrl = checkBaseUrl(options.baseUrl ?? env("WANDB_BASE_URL") ?? DEFAULT_BASE_URL);
  let apiKey: string | null = null;
  if (mode === "online") {
    apiKey = options.apiKey ?? env("WANDB_API_KEY") ??
      netrcPassword(readNetrc(options.netrcPath, env) ?? "", new URL(baseUrl).hostname) ?? null;
    if (apiKey === null || apiKey.trim() === "") {
      throw new LoggingError(
        "log_to_wandb is set but no W&B API key was found; expected WANDB_API_KEY, or a " +
          "~/.netrc entry from `wandb login`, or WANDB_MODE=disabled (or log_to_wandb: false)",
      );
    }
    apiKey = apiKey.trim();
    if (!/^[\x21-\x7e]+$/.test(apiKey)) {
      throw new LoggingError("the W&B API key contains characters other than printable ASCII");
    }
  }
  const pick = (
    v: string | null | undefined,
  ) => (v === null || v === undefined || v === "" ? undefined : v);
  const project = checkName(
    "project",
    pick(settings.wandbProject) ?? env("WANDB_PROJECT") ?? "uncategorized",
  );
  const entityRaw = pick(settings.wandbEntity) ?? env("WANDB_ENTITY");
  const entity = entityRaw === undefined ? null : checkName("entity", entityRaw);
  const runId = checkName(
    "run id",
    pick(settings.wandbId) ?? env("WANDB_RUN_ID") ?? generateRunId(),
  );
  const displayName = pick(settings.runName) ?? env("WANDB_NAME") ?? null;
  return { mode, apiKey, baseUrl, project, entity, runId, displayName };
}
