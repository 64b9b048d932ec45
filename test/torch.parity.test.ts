/**
 * PyTorch parity on every backend: the shared suite (test/helpers/parity-suite.ts) — the recurrent
 * layer fixtures and the char-LM training run — once per entry of `PARITY_BACKENDS` (js, wasm on one
 * thread, wasm on two threads), each in float64 and float32.
 */
import { runParitySuites } from './helpers/parity-suite.ts';

await runParitySuites();
