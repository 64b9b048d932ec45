/**
 * The workloads of the benchmark: W1 (the anchors' reference character LM) and its variants.
 *
 * Every workload is Embedding(V, H) → recurrent stack (hidden H, `layers` layers) over T steps of a
 * batch of B sequences → Linear(H, V) → softmax cross-entropy (mean), then global-norm gradient
 * clipping at 5 and one Adam step (lr 1e-3). Streaming runs the same embedding + recurrent stack
 * (no head) on one token per call with the state carried, batch 1.
 */

export type CellKind = 'lstm' | 'gru' | 'rnn';

export interface Workload {
  /** Name used in tables and in `--only`. */
  name: string;
  /** One line saying what it is. */
  label: string;
  cell: CellKind;
  V: number;
  H: number;
  B: number;
  T: number;
  layers: number;
}

export const WORKLOADS: readonly Workload[] = [
  { name: 'W1', label: 'LSTM H=256 B=32 T=64', cell: 'lstm', V: 65, H: 256, B: 32, T: 64, layers: 1 },
  { name: 'GRU', label: 'GRU H=256 B=32 T=64', cell: 'gru', V: 65, H: 256, B: 32, T: 64, layers: 1 },
  { name: 'RNN', label: 'tanh RNN H=256 B=32 T=64', cell: 'rnn', V: 65, H: 256, B: 32, T: 64, layers: 1 },
  { name: 'L2', label: '2-layer LSTM H=256 B=32 T=64', cell: 'lstm', V: 65, H: 256, B: 32, T: 64, layers: 2 },
  { name: 'H512', label: 'LSTM H=512 B=64 T=100', cell: 'lstm', V: 65, H: 512, B: 64, T: 100, layers: 1 },
];

export function gatesOf(cell: CellKind): number {
  return cell === 'lstm' ? 4 : cell === 'gru' ? 3 : 1;
}

/**
 * Matrix-multiply FLOPs of one training step (forward + backward ≈ 3 × forward), the figure used to
 * estimate how long a workload takes from another one's measured time. The input of every layer
 * has H features (the embedding dimension is H).
 */
export function trainFlops(w: Workload): number {
  const G = gatesOf(w.cell);
  const perTokenLayer = 2 * G * w.H * (w.H + w.H);
  const perTokenHead = 2 * w.H * w.V;
  return 3 * w.B * w.T * (w.layers * perTokenLayer + perTokenHead);
}

export function selectWorkloads(only: readonly string[] | null): Workload[] {
  if (only === null) return [...WORKLOADS];
  const wanted = new Set(only.map((s) => s.toUpperCase()));
  return WORKLOADS.filter((w) => wanted.has(w.name.toUpperCase()));
}
