/**
 * The streaming fast path for token inputs: Embedding → stacked unidirectional RNN/LSTM/GRU →
 * optional Linear head, one token at a time (batch 1), with no allocation per step.
 *
 * For the first layer the input projection of every token is precomputed once into a table
 * (PERFORMANCE.md): Tᵢₙ[V, G·H] = E · W_ih_l0ᵀ + b_ih (+ b_hh for RNN/LSTM), so a step of layer 0 is
 * one row copy plus one mat-vec with W_hh and the fused gate kernel. Deeper layers do their input
 * mat-vec as usual. All buffers live on the model's backend (wasm memory for the wasm backend).
 *
 * The token table is a snapshot of the weights: call `refresh()` after they change (e.g. after
 * more training); every other step reads the live weights. Outputs agree with running the layer
 * on the whole sequence (tested).
 */
import { asyncReads, type Backend, type CellStep, type Storage } from '../backend/interface.ts';
import type { Embedding, Linear } from '../nn/layers.ts';
import type { RecurrentBase } from '../nn/recurrent.ts';
import { CELLS } from '../cells/recurrent.ts';

export class TokenStream {
  private readonly be: Backend;
  private readonly V: number;
  private readonly H: number;
  private readonly G: number;
  private readonly L: number;
  private table: Storage;
  /** Per layer: [G·H] gate pre-activations (and, for GRU, [3H] recurrent products). */
  private readonly gx: Storage[];
  private readonly gh: Storage[];
  /** Per layer: ping-pong hidden and cell states [H]. */
  private h: Storage[][];
  private c: Storage[][];
  private cur = 0;
  private readonly logits: Storage | null;
  private readonly step1: CellStep;

  constructor(private readonly embedding: Embedding, private readonly layer: RecurrentBase, private readonly head: Linear | null = null) {
    if (layer.bidirectional) throw new TypeError('TokenStream: a bidirectional layer cannot run step by step (its reverse direction needs the whole sequence)');
    if (embedding.embeddingDim !== layer.inputSize) throw new RangeError(`TokenStream: embedding size ${embedding.embeddingDim} does not match the layer's input size ${layer.inputSize}`);
    if (head && head.inFeatures !== layer.hiddenSize) throw new RangeError(`TokenStream: head input size ${head.inFeatures} does not match the hidden size ${layer.hiddenSize}`);
    const w = embedding.weight;
    this.be = w.backend;
    this.V = embedding.numEmbeddings;
    this.H = layer.hiddenSize;
    this.G = CELLS[layer.mode].G;
    this.L = layer.numLayers;
    const GH = this.G * this.H;
    const dtype = w.dtype;
    this.table = this.be.alloc(this.V * GH, dtype);
    this.gx = Array.from({ length: this.L }, () => this.be.alloc(GH, dtype));
    this.gh = Array.from({ length: this.L }, () => this.be.alloc(GH, dtype));
    this.h = Array.from({ length: this.L }, () => [this.be.alloc(this.H, dtype), this.be.alloc(this.H, dtype)]);
    this.c = Array.from({ length: this.L }, () => [this.be.alloc(this.H, dtype), this.be.alloc(this.H, dtype)]);
    this.logits = head ? this.be.alloc(head.outFeatures, dtype) : null;
    this.step1 = { B: 1, H: this.H, t: 0, lengths: null };
    this.refresh();
  }

  /** Recompute the token table from the current weights. */
  refresh(): void {
    const { be, V, H, G } = this;
    const GH = G * H;
    const p = this.layer.cells[0][0];
    const E = this.embedding.embeddingDim;
    // table = E · W_ihᵀ + b_ih (+ b_hh when the cell folds it in)
    be.gemm(false, true, V, GH, E, 1, this.embedding.weight.storage, 0, E, p.weightIh.storage, 0, E, 0, this.table, 0, GH);
    if (p.biasIh) be.addRowVector(V, GH, p.biasIh.storage, 0, this.table, 0);
    if (p.biasHh && CELLS[this.layer.mode].foldRecurrentBias) be.addRowVector(V, GH, p.biasHh.storage, 0, this.table, 0);
  }

  /** Zero the carried state. */
  reset(): void {
    for (let l = 0; l < this.L; l++) {
      for (const s of [...this.h[l], ...this.c[l]]) this.be.fill(s, 0, 0, this.H);
    }
  }

  /**
   * Feed one token. Returns the head's logits (a host copy) when there is a head, else the top
   * layer's hidden state (a host copy).
   */
  step(token: number): Float32Array | Float64Array {
    this.push(token);
    return this.output();
  }

  /** The current output (head logits, or the top hidden state) as a host copy. */
  output(): Float32Array | Float64Array {
    return this.be.read(this.outputStorage());
  }

  /**
   * `step` for a backend whose memory is read asynchronously (WebGPU), and for code that runs on
   * any backend: the state advances at once, the output arrives when the device has it.
   */
  stepAsync(token: number): Promise<Float32Array | Float64Array> {
    this.push(token);
    return this.outputAsync();
  }

  /** `output` read asynchronously (see stepAsync). */
  outputAsync(): Promise<Float32Array | Float64Array> {
    return asyncReads(this.be).read(this.outputStorage());
  }

  /** Where the current output is: the head's logits, computed now, or the top hidden state. */
  private outputStorage(): Storage {
    const top = this.h[this.L - 1][this.cur];
    if (!this.head || !this.logits) return top;
    const O = this.head.outFeatures;
    this.be.gemm(false, true, 1, O, this.H, 1, top, 0, this.H, this.head.weight.storage, 0, this.H, 0, this.logits, 0, O);
    if (this.head.bias) this.be.addRowVector(1, O, this.head.bias.storage, 0, this.logits, 0);
    return this.logits;
  }

  /** Advance the state by one token without reading anything back (no allocation). */
  push(token: number): void {
    if (!(Number.isInteger(token) && token >= 0 && token < this.V)) throw new RangeError(`TokenStream: token ${token} is outside the vocabulary [0, ${this.V})`);
    const { be, H, G } = this;
    const GH = G * H;
    const mode = this.layer.mode;
    const prev = this.cur, next = 1 - this.cur;
    for (let l = 0; l < this.L; l++) {
      const p = this.layer.cells[l][0];
      const gx = this.gx[l];
      if (l === 0) {
        be.copy(this.table, token * GH, gx, 0, GH);
      } else {
        // gx = h_{l−1} · W_ihᵀ + b_ih (+ b_hh)
        be.gemm(false, true, 1, GH, H, 1, this.h[l - 1][next], 0, H, p.weightIh.storage, 0, H, 0, gx, 0, GH);
        if (p.biasIh) be.addRowVector(1, GH, p.biasIh.storage, 0, gx, 0);
        if (p.biasHh && mode !== 'GRU') be.addRowVector(1, GH, p.biasHh.storage, 0, gx, 0);
      }
      const hPrev = this.h[l][prev], hNext = this.h[l][next];
      if (mode === 'GRU') {
        const gh = this.gh[l];
        be.gemm(false, true, 1, GH, H, 1, hPrev, 0, H, p.weightHh.storage, 0, H, 0, gh, 0, GH);
        if (p.biasHh) be.addRowVector(1, GH, p.biasHh.storage, 0, gh, 0);
        be.gruCellForward(this.step1, gx, 0, gh, 0, hPrev, 0, hNext, 0, null, 0, H);
      } else {
        be.gemm(false, true, 1, GH, H, 1, hPrev, 0, H, p.weightHh.storage, 0, H, 1, gx, 0, GH);
        if (mode === 'LSTM') {
          be.lstmCellForward(this.step1, gx, 0, hPrev, 0, this.c[l][prev], 0, this.c[l][next], 0, hNext, 0, null, 0, H);
        } else {
          be.rnnCellForward(this.step1, mode === 'RNN_TANH' ? 'tanh' : 'relu', gx, 0, hPrev, 0, hNext, 0, null, 0, H);
        }
      }
    }
    this.cur = next;
  }
}
