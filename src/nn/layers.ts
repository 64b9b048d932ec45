/**
 * Feed-forward building blocks with PyTorch's names, layouts and default initialisation:
 * Linear (weight [out, in], bias [out], U(−1/√in, 1/√in)), Embedding (weight [V, E], N(0, 1)),
 * Dropout, Sequential.
 */
import type { DType } from '../backend/interface.ts';
import { Tensor, zeros } from '../tensor/tensor.ts';
import { globalRng, type Rng } from '../tensor/rng.ts';
import { normal_, uniform_ } from '../tensor/init.ts';
import { linear } from '../autograd/ops/linalg.ts';
import { dropout, embedding } from '../autograd/ops/nn.ts';
import { checkOptions, checkPositiveInt, Module } from './module.ts';

export interface LinearOptions {
  bias?: boolean;
  dtype?: DType;
  rng?: Rng;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    checkOptions('Linear', opts, ['bias', 'dtype', 'rng']);
    checkPositiveInt('Linear', 'inFeatures', inFeatures);
    checkPositiveInt('Linear', 'outFeatures', outFeatures);
    const rng = opts.rng ?? globalRng;
    const k = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', uniform_(zeros([outFeatures, inFeatures], { dtype: opts.dtype }), -k, k, rng));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', uniform_(zeros([outFeatures], { dtype: opts.dtype }), -k, k, rng));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export interface EmbeddingOptions {
  /** Row whose vector starts at 0 and receives no gradient (PyTorch padding_idx). */
  paddingIdx?: number;
  dtype?: DType;
  rng?: Rng;
}

export class Embedding extends Module {
  readonly weight: Tensor;
  readonly paddingIdx: number | null;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: EmbeddingOptions = {}) {
    super();
    checkOptions('Embedding', opts, ['paddingIdx', 'dtype', 'rng']);
    checkPositiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    checkPositiveInt('Embedding', 'embeddingDim', embeddingDim);
    const p = opts.paddingIdx;
    if (p !== undefined && !(Number.isInteger(p) && p >= 0 && p < numEmbeddings)) {
      throw new RangeError(`Embedding: paddingIdx must be an integer in [0, ${numEmbeddings}), got ${p}`);
    }
    this.paddingIdx = p ?? null;
    this.weight = this.registerParameter('weight', normal_(zeros([numEmbeddings, embeddingDim], { dtype: opts.dtype }), 0, 1, opts.rng ?? globalRng));
    if (this.paddingIdx !== null) {
      this.weight.backend.fill(this.weight.storage, 0, this.paddingIdx * embeddingDim, embeddingDim);
    }
  }

  /** ids: flat token ids; shape: their shape (default [ids.length]). Returns [...shape, E]. */
  forward(ids: ArrayLike<number>, shape?: readonly number[]): Tensor {
    for (let i = 0; i < ids.length; i++) {
      const k = ids[i];
      if (!(Number.isInteger(k) && k >= 0 && k < this.numEmbeddings)) {
        throw new RangeError(`Embedding: id ${k} at position ${i} is outside the vocabulary [0, ${this.numEmbeddings})`);
      }
    }
    return embedding(this.weight, ids, shape ?? [ids.length], this.paddingIdx);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5, private readonly rng: Rng = globalRng) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.rng);
  }
}

/** Anything with forward(Tensor) → Tensor. */
export interface TensorModule extends Module {
  forward(x: Tensor): Tensor;
}

/** Modules applied in order; children are named "0", "1", … as in PyTorch. */
export class Sequential extends Module {
  readonly layers: TensorModule[];

  constructor(...layers: TensorModule[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => {
      if (!(m instanceof Module) || typeof m.forward !== 'function') throw new TypeError(`Sequential: item ${i} is not a module with forward(x)`);
      this.registerModule(String(i), m);
    });
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.layers) h = m.forward(h);
    return h;
  }
}

/** Activation modules so Sequential can hold them. */
export class Lambda extends Module {
  constructor(private readonly fn: (x: Tensor) => Tensor, readonly label = 'lambda') {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}
