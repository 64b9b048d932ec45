/**
 * The recur WebAssembly kernels: everything the host backend (../backend.ts and the modules it delegates to) calls. Built by
 * scripts/build-wasm.mjs into a plain-SIMD and a relaxed-SIMD variant; both import their memory
 * (`env.memory`, shared so worker threads run on the same bytes) and keep no state of their own.
 */
export { dataEnd } from './common';
export { vmath_eval } from './vmath';
export * from './gemm';
export * from './elementwise';
export * from './rows';
export * from './cells';
