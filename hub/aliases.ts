/**
 * TransformerLens official model names and aliases (`get_official_model_name`, case-insensitive)
 * and {@link resolveModelName}, which also accepts plain hub repo ids and local directories.
 * @module
 */

import { HubError } from "./errors.ts";
import { basename } from "../util/path.ts";

type Table = Record<string, string[]>;

/** Pythia: `EleutherAI/pythia-<size><suffix>` with the pre-rename sizes as extra aliases. */
function pythia(t: Table): void {
  const sizes: [string, string | null][] = [
    ["14m", null],
    ["31m", null],
    ["70m", "19m"],
    ["160m", "125m"],
    ["410m", "350m"],
    ["1b", "800m"],
    ["1.4b", "1.3b"],
    ["2.8b", "2.7b"],
    ["6.9b", "6.7b"],
    ["12b", "13b"],
  ];
  for (const suffix of ["", "-deduped", "-v0", "-deduped-v0"]) {
    for (const [size, old] of sizes) {
      if (old === null && suffix !== "") continue; // 14m/31m exist only as base models
      const aliases = [`pythia-${size}${suffix}`];
      if (old) aliases.push(`EleutherAI/pythia-${old}${suffix}`, `pythia-${old}${suffix}`);
      t[`EleutherAI/pythia-${size}${suffix}`] = aliases;
    }
  }
  t["EleutherAI/pythia-70m"].splice(1, 0, "pythia");
  t["EleutherAI/pythia-70m-v0"].splice(1, 0, "pythia-v0");
  for (const s of [1, 2, 3]) {
    t[`EleutherAI/pythia-160m-seed${s}`] = [
      `pythia-160m-seed${s}`,
      `EleutherAI/pythia-125m-seed${s}`,
      `pythia-125m-seed${s}`,
    ];
  }
}

/** Neel Nanda's toy models. */
function neelNanda(t: Table): void {
  const old: [number, number][] = [[1, 9], [2, 10], [4, 11], [6, 13], [8, 21], [10, 22], [12, 23]];
  for (const [l, v] of old) {
    t[`NeelNanda/SoLU_${l}L_v${v}_old`] = [`solu-${l}l-pile`, `solu-${l}l-old`];
  }
  const c4 = (kind: string, prefix: string, l: number, w: number) => {
    t[`NeelNanda/${kind}_${l}L${w}W_C4_Code`] = [
      `${prefix}-${l}l`,
      `${prefix}-${l}l-new`,
      `${prefix}-${l}l-c4-code`,
    ];
  };
  for (const l of [1, 2, 3, 4]) {
    c4("SoLU", "solu", l, 512);
    c4("GELU", "gelu", l, 512);
    c4("Attn_Only", "attn-only", l, 512);
  }
  c4("SoLU", "solu", 6, 768);
  c4("SoLU", "solu", 8, 1024);
  c4("SoLU", "solu", 10, 1280);
  c4("SoLU", "solu", 12, 1536);
  t["NeelNanda/Attn-Only-2L512W-Shortformer-6B-big-lr"] = [
    "attn-only-2l-demo",
    "attn-only-2l-shortformer-6b-big-lr",
    "attn-only-2l-induction-demo",
    "attn-only-demo",
  ];
  for (const l of [1, 4]) {
    t[`NeelNanda/SoLU_${l}L512W_Wiki_Finetune`] = [
      `solu-${l}l-wiki`,
      `solu-${l}l-wiki-finetune`,
      `solu-${l}l-finetune`,
    ];
  }
}

/** stanford-crfm GPT-2 small/medium seeds a–e. */
function stanford(t: Table): void {
  const runs: [string, string, string, string][] = [
    ["small", "alias", "x21", "a"],
    ["small", "battlestar", "x49", "b"],
    ["small", "caprica", "x81", "c"],
    ["small", "darkmatter", "x343", "d"],
    ["small", "expanse", "x777", "e"],
    ["medium", "arwen", "x21", "a"],
    ["medium", "beren", "x49", "b"],
    ["medium", "celebrimbor", "x81", "c"],
    ["medium", "durin", "x343", "d"],
    ["medium", "eowyn", "x777", "e"],
  ];
  for (const [size, name, x, l] of runs) {
    const other = size === "small" ? `gpt2-mistral-small-${l}` : `gpt2-medium-small-${l}`;
    t[`stanford-crfm/${name}-gpt2-${size}-${x}`] = [
      `stanford-gpt2-${size}-${l}`,
      `${name}-gpt2-${size}-${x}`,
      other,
      `gpt2-stanford-${size}-${l}`,
    ];
  }
}

/** `org/Name` → [lower-case short name] for families whose alias is the lower-cased name. */
function lowerAliases(t: Table, org: string, names: string[]): void {
  for (const n of names) t[`${org}/${n}`] = [n.toLowerCase()];
}

function buildTable(): Table {
  const t: Table = {
    "gpt2": ["gpt2-small"],
    "gpt2-medium": [],
    "gpt2-large": [],
    "gpt2-xl": [],
    "distilgpt2": ["distillgpt2", "distill-gpt2", "distil-gpt2", "gpt2-xs"],
    "facebook/opt-125m": ["opt-125m", "opt-small", "opt"],
    "facebook/opt-1.3b": ["opt-1.3b", "opt-medium"],
    "facebook/opt-2.7b": ["opt-2.7b", "opt-large"],
    "facebook/opt-6.7b": ["opt-6.7b", "opt-xl"],
    "facebook/opt-13b": ["opt-13b", "opt-xxl"],
    "facebook/opt-30b": ["opt-30b", "opt-xxxl"],
    "facebook/opt-66b": ["opt-66b", "opt-xxxxl"],
    "EleutherAI/gpt-neo-125M": ["gpt-neo-125M", "gpt-neo-small", "neo-small", "neo"],
    "EleutherAI/gpt-neo-1.3B": ["gpt-neo-1.3B", "gpt-neo-medium", "neo-medium"],
    "EleutherAI/gpt-neo-2.7B": ["gpt-neo-2.7B", "gpt-neo-large", "neo-large"],
    "EleutherAI/gpt-j-6B": ["gpt-j-6B", "gpt-j", "gptj"],
    "EleutherAI/gpt-neox-20b": ["gpt-neox-20b", "gpt-neox", "neox"],
    "roneneldan/TinyStories-1Layer-21M": ["tiny-stories-1L-21M"],
    "roneneldan/TinyStories-2Layers-33M": ["tiny-stories-2L-33M"],
    "roneneldan/TinyStories-Instuct-1Layer-21M": ["tiny-stories-instruct-1L-21M"], // sic
    "roneneldan/TinyStories-Instruct-2Layers-33M": ["tiny-stories-instruct-2L-33M"],
    "llama-7b-hf": ["llama-7b"],
    "llama-13b-hf": ["llama-13b"],
    "llama-30b-hf": ["llama-30b"],
    "llama-65b-hf": ["llama-65b"],
    "meta-llama/Llama-2-7b-hf": ["Llama-2-7b"],
    "meta-llama/Llama-2-7b-chat-hf": ["Llama-2-7b-chat"],
    "meta-llama/Llama-2-13b-hf": ["Llama-2-13b"],
    "meta-llama/Llama-2-13b-chat-hf": ["Llama-2-13b-chat"],
    "meta-llama/Llama-2-70b-chat-hf": ["Llama-2-70b-chat", "meta-llama-2-70b-chat-hf"],
    "codellama/CodeLlama-7b-hf": ["CodeLlamallama-2-7b"], // sic, as in TransformerLens
    "codellama/CodeLlama-7b-Python-hf": ["CodeLlama-7b-python"],
    "codellama/CodeLlama-7b-Instruct-hf": ["CodeLlama-7b-instruct"],
    "mistralai/Mistral-7B-v0.1": ["mistral-7b"],
    "mistralai/Mistral-7B-Instruct-v0.1": ["mistral-7b-instruct"],
    "mistralai/Mistral-Nemo-Base-2407": ["mistral-nemo-base-2407"],
    "mistralai/Mistral-Small-24B-Base-2501": [],
    "mistralai/Mixtral-8x7B-v0.1": ["mixtral", "mixtral-8x7b"],
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ["mixtral-instruct", "mixtral-8x7b-instruct"],
    "microsoft/phi-1": ["phi-1"],
    "microsoft/phi-1_5": ["phi-1_5"],
    "microsoft/phi-2": ["phi-2"],
    "microsoft/Phi-3-mini-4k-instruct": ["phi-3"],
    "microsoft/phi-4": ["phi-4"],
    "Qwen/Qwen-1_8B": ["qwen-1.8b"],
    "Qwen/Qwen-1_8B-Chat": ["qwen-1.8b-chat"],
    "Qwen/QwQ-32B-Preview": ["qwen-32b-preview"],
    "Baidicoot/Othello-GPT-Transformer-Lens": ["othello-gpt"],
    "bigcode/santacoder": ["santacoder"],
    "ArthurConmy/redwood_attn_2l": ["redwood_attn_2l"],
    "ai-forever/mGPT": ["mGPT"],
    "01-ai/Yi-6B": ["yi-6b"],
    "01-ai/Yi-6B-Chat": ["yi-6b-chat"],
    "01-ai/Yi-34B": ["yi-34b"],
    "01-ai/Yi-34B-Chat": ["yi-34b-chat"],
    "stabilityai/stablelm-3b-4e1t": ["stablelm-3b-4e1t", "stablelm-3b"],
    "stabilityai/stablelm-2-1_6b": ["stablelm-2-1.6b"],
    "stabilityai/stablelm-2-1_6b-chat": ["stablelm-2-1.6b-chat"],
    "stabilityai/stablelm-2-zephyr-1_6b": ["stablelm-2-zephyr-1.6b"],
  };
  for (const kind of ["base", "tuned"]) {
    for (const b of ["3b", "7b"]) {
      t[`stabilityai/stablelm-${kind}-alpha-${b}`] = [
        `stablelm-${kind}-alpha-${b}`,
        `stablelm-${kind}-${b}`,
      ];
    }
  }
  lowerAliases(t, "stabilityai", [
    "stable-code-3b",
    "stable-code-instruct-3b",
    "stablelm-2-12b",
    "stablelm-2-12b-chat",
    "stablelm-zephyr-3b",
  ]);
  for (const m of ["1M", "3M", "8M", "28M", "33M"]) {
    t[`roneneldan/TinyStories-${m}`] = [`tiny-stories-${m}`];
    t[`roneneldan/TinyStories-Instruct-${m}`] = [`tiny-stories-instruct-${m}`];
  }
  lowerAliases(t, "google", [
    "gemma-2b",
    "gemma-7b",
    "gemma-2b-it",
    "gemma-7b-it",
    "gemma-2-2b",
    "gemma-2-2b-it",
    "gemma-2-9b",
    "gemma-2-9b-it",
    "gemma-2-27b",
    "gemma-2-27b-it",
    "gemma-3-270m",
    "gemma-3-270m-it",
    "gemma-3-1b-pt",
    "gemma-3-1b-it",
    "gemma-3-4b-pt",
    "gemma-3-4b-it",
    "gemma-3-12b-pt",
    "gemma-3-12b-it",
    "gemma-3-27b-pt",
    "gemma-3-27b-it",
    "medgemma-4b-pt",
    "medgemma-4b-it",
    "medgemma-27b-it",
    "medgemma-27b-text-it",
  ]);
  for (
    const m of [
      "Meta-Llama-3-8B",
      "Meta-Llama-3-70B",
      "Llama-3.1-8B",
      "Llama-3.1-70B",
      "Llama-3.2-1B",
      "Llama-3.2-3B",
    ]
  ) {
    t[`meta-llama/${m}`] = [];
    t[`meta-llama/${m}-Instruct`] = [];
  }
  t["meta-llama/Llama-3.3-70B-Instruct"] = [];
  for (const s of ["7B", "14B"]) lowerAliases(t, "Qwen", [`Qwen-${s}`, `Qwen-${s}-Chat`]);
  for (const s of ["0.5B", "1.8B", "4B", "7B", "14B"]) {
    lowerAliases(t, "Qwen", [`Qwen1.5-${s}`, `Qwen1.5-${s}-Chat`]);
  }
  for (const s of ["0.5B", "1.5B", "7B"]) {
    lowerAliases(t, "Qwen", [`Qwen2-${s}`, `Qwen2-${s}-Instruct`]);
  }
  for (const s of ["0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B"]) {
    lowerAliases(t, "Qwen", [`Qwen2.5-${s}`, `Qwen2.5-${s}-Instruct`]);
  }
  lowerAliases(t, "Qwen", [
    "Qwen3-0.6B",
    "Qwen3-0.6B-Base",
    "Qwen3-1.7B",
    "Qwen3-4B",
    "Qwen3-8B",
    "Qwen3-14B",
  ]);
  for (const s of ["Llama-8B", "Llama-70B", "Qwen-1.5B", "Qwen-7B", "Qwen-14B", "Qwen-32B"]) {
    const a = `deepseek-r1-distill-${s.toLowerCase()}`;
    t[`deepseek-ai/DeepSeek-R1-Distill-${s}`] = [a, `${a}-chat`];
  }
  lowerAliases(t, "bigscience", ["bloom-560m", "bloom-1b1", "bloom-1b7", "bloom-3b", "bloom-7b1"]);
  lowerAliases(t, "google-bert", [
    "bert-base-cased",
    "bert-base-uncased",
    "bert-large-cased",
    "bert-large-uncased",
  ]);
  lowerAliases(t, "google-t5", ["t5-small", "t5-base", "t5-large"]);
  pythia(t);
  neelNanda(t);
  stanford(t);
  return t;
}

/** Official name → aliases, as in TransformerLens (`MODEL_ALIASES` plus alias-less names). */
export const MODEL_ALIASES: Readonly<Record<string, readonly string[]>> = buildTable();

/** All TransformerLens official model names. */
export const OFFICIAL_MODEL_NAMES: readonly string[] = Object.keys(MODEL_ALIASES);

const LOOKUP = new Map<string, string>();
for (const [official, aliases] of Object.entries(MODEL_ALIASES)) {
  LOOKUP.set(official.toLowerCase(), official);
  for (const a of aliases) LOOKUP.set(a.toLowerCase(), official);
}

/** What {@link resolveModelName} found. */
export interface ResolvedModelName {
  /** Hub repo id (or the local directory for `local`). */
  repoId: string;
  /** TransformerLens `cfg.model_name`: the last path component, e.g. `"pythia-70m-deduped"`. */
  tlName: string;
  /** True when the name is a TransformerLens official name or alias. */
  official: boolean;
  /** True when `repoId` is a local directory. */
  local: boolean;
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * Resolves a TransformerLens model name or alias (case-insensitive) to its hub repo:
 * `"gpt2-small"` → `gpt2`, `"pythia-70m-deduped"` → `EleutherAI/pythia-70m-deduped`,
 * `"gemma-2-2b"` → `google/gemma-2-2b`. Path-like names (`./x`, `/x`, `~/x`) and existing
 * directories are local; other `org/name` strings pass through as repo ids.
 *
 * @example
 * ```ts
 * import { resolveModelName } from "./aliases.ts";
 * const r = resolveModelName("Pythia-70M-Deduped");
 * if (r.repoId !== "EleutherAI/pythia-70m-deduped" || r.tlName !== "pythia-70m-deduped") throw new Error();
 * ```
 */
export function resolveModelName(nameOrAlias: string): ResolvedModelName {
  if (typeof nameOrAlias !== "string" || nameOrAlias.trim() === "") {
    throw new HubError(
      "invalid",
      `model name is ${JSON.stringify(nameOrAlias ?? null)}, expected a TransformerLens name, ` +
        "an org/name repo id or a local directory",
    );
  }
  const name = nameOrAlias.trim();
  const pathLike = /^(\/|\.{1,2}[/\\]|~[/\\]|[A-Za-z]:[/\\])/.test(name);
  if (pathLike || (!LOOKUP.has(name.toLowerCase()) && isDir(name))) {
    if (!isDir(name)) {
      throw new HubError("invalid", `model directory ${name} does not exist or is not a directory`);
    }
    return { repoId: name, tlName: basename(name), official: false, local: true };
  }
  const official = LOOKUP.get(name.toLowerCase());
  if (official) {
    return { repoId: official, tlName: official.split("/").pop()!, official: true, local: false };
  }
  if (/^[\w.-]+\/[\w.-]+$/.test(name)) {
    return { repoId: name, tlName: name.split("/").pop()!, official: false, local: false };
  }
  const lower = name.toLowerCase();
  const close = [
    ...new Set(
      [...LOOKUP.entries()].filter(([k]) => k.includes(lower) || lower.includes(k)).map(([, v]) =>
        v
      ),
    ),
  ].slice(0, 5);
  throw new HubError(
    "invalid",
    `unknown model name ${JSON.stringify(name)}: not a TransformerLens model name or alias, ` +
      `not a local directory, and not an "org/name" hub repo id` +
      (close.length ? ` (did you mean ${close.join(", ")}?)` : ""),
  );
}
