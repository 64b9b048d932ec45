/** Default settings of `recur demo` (sizes chosen so it learns visibly in ~100 s on two CPU cores). */
export const DEMO_DEFAULTS = {
  time: 100,
  out: 'recur-demo.safetensors',
  seed: 0,
  hidden: 128,
  embedding: 32,
  layers: 1,
  seqLen: 64,
  batch: 16,
  lr: 0.02,
  sampleEvery: 20,
  sampleLength: 200,
  temperature: 0.8,
  prime: 'The whale ',
  valChars: 16000,
  valFraction: 0.05,
  clipNorm: 5,
} as const;
