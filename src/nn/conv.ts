/**
 * Convolution and pooling modules with PyTorch's names, layouts and default initialisation:
 * Conv2d (weight [O, C, kh, kw], bias [O], both U(−1/√fan_in, 1/√fan_in) with fan_in = C·kh·kw —
 * what PyTorch's kaiming_uniform(a = √5) default amounts to), MaxPool2d, AvgPool2d, Flatten.
 * The ops live in autograd/ops/conv.ts.
 */
import type { DType } from '../backend/interface.ts';
import { Tensor, shapeStr, zeros } from '../tensor/tensor.ts';
import { globalRng, type Rng } from '../tensor/rng.ts';
import { uniform_ } from '../tensor/init.ts';
import { avgPool2d, conv2d, maxPool2d } from '../autograd/ops/conv.ts';
import { reshape } from '../autograd/ops/shape.ts';
import { checkOptions, checkPositiveInt, Module } from './module.ts';

export type Size2 = number | readonly [number, number];

export interface Conv2dModuleOptions {
  stride?: Size2;
  padding?: Size2;
  bias?: boolean;
  dtype?: DType;
  rng?: Rng;
}

function size2(where: string, name: string, v: Size2): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  for (const x of p) if (!Number.isInteger(x) || x < 1) throw new TypeError(`${where}: '${name}' must be a positive integer or [h, w], got ${JSON.stringify(v)}`);
  return p;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: Size2;
  readonly padding: Size2;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Size2, opts: Conv2dModuleOptions = {}) {
    super();
    checkOptions('Conv2d', opts, ['stride', 'padding', 'bias', 'dtype', 'rng']);
    checkPositiveInt('Conv2d', 'inChannels', inChannels);
    checkPositiveInt('Conv2d', 'outChannels', outChannels);
    this.kernelSize = size2('Conv2d', 'kernelSize', kernelSize);
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const rng = opts.rng ?? globalRng;
    const [kh, kw] = this.kernelSize;
    const k = 1 / Math.sqrt(inChannels * kh * kw);
    this.weight = this.registerParameter('weight', uniform_(zeros([outChannels, inChannels, kh, kw], { dtype: opts.dtype }), -k, k, rng));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', uniform_(zeros([outChannels], { dtype: opts.dtype }), -k, k, rng));
  }

  /** x [N, C, H, W] → [N, O, Ho, Wo]. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Size2, readonly stride?: Size2, readonly padding: Size2 = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Size2, readonly stride?: Size2) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, { stride: this.stride });
  }
}

/** [N, ...] → [N, product of the rest] (a view). */
export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    if (x.ndim < 1) throw new RangeError(`Flatten: input must have a batch axis, got ${shapeStr(x.shape)}`);
    return reshape(x, [x.shape[0], -1]);
  }
}
