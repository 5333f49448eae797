/**
 * The seeded float64 draws of reference initialisations and test problems; they live in
 * `util/rng.ts` with saeflow's one generator (Mulberry32).
 * @module
 */

export { createRng, type RefRng } from "../../util/rng.ts";
