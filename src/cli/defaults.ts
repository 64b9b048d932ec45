/** Default settings of `recur demo` (sizes chosen so it learns visibly in ~100 s on two CPU cores). */
export const DEMO_DEFAULTS = {
  time: 100,
  out: 'recur-demo.safetensors',
  seed: 0,
  /** On the WebAssembly backend (the default where it loads; W1 trains 48× faster there than on the reference backend, BENCHMARKS.md). */
  hidden: 256,
  /** On the plain-TypeScript backend (RECUR_BACKEND=js, or where wasm does not load). */
  hiddenJs: 128,
  embedding: 32,
  layers: 1,
  seqLen: 64,
  batch: 16,
  lr: 0.01,
  lrJs: 0.02,
  sampleEvery: 20,
  sampleLength: 200,
  temperature: 0.8,
  prime: 'The whale ',
  valChars: 16000,
  valFraction: 0.05,
  clipNorm: 5,
} as const;

/** Default settings of `recur sample` (besides the demo's prime and temperature). */
export const SAMPLE_DEFAULTS = {
  length: 500,
  seed: 0,
} as const;
