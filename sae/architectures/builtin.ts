/**
 * Registers the built-in architectures, in SAELens's order. Adding a built-in architecture is
 * one folder exporting its unit and one line here.
 * @module
 */

import { registerSaeArchitecture } from "./registry.ts";
import type { SaeArchitectureUnit } from "./unit.ts";
import { standard } from "./standard/index.ts";
import { gated } from "./gated/index.ts";
import { jumprelu } from "./jumprelu/index.ts";
import { topk } from "./topk/index.ts";
import { batchtopk } from "./batchtopk/index.ts";
import { matryoshkaBatchtopk } from "./matryoshka_batchtopk/index.ts";
import {
  jumpreluSkipTranscoder,
  jumpreluTranscoder,
  skipTranscoder,
  transcoder,
} from "./transcoder/index.ts";
import { matchingPursuit } from "./matching_pursuit/index.ts";

/** The built-in units by architecture name, in registration order. */
export const BUILTIN_ARCHITECTURES: readonly (readonly [string, SaeArchitectureUnit])[] = [
  ["standard", standard],
  ["gated", gated],
  ["jumprelu", jumprelu],
  ["topk", topk],
  ["batchtopk", batchtopk],
  ["matryoshka_batchtopk", matryoshkaBatchtopk],
  ["transcoder", transcoder],
  ["skip_transcoder", skipTranscoder],
  ["jumprelu_transcoder", jumpreluTranscoder],
  ["jumprelu_skip_transcoder", jumpreluSkipTranscoder],
  ["matching_pursuit", matchingPursuit],
];

for (const [name, unit] of BUILTIN_ARCHITECTURES) registerSaeArchitecture(name, unit);
