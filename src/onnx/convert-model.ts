/**
 * `PipelineModel`: the trainable recur model an ONNX recurrent pipeline converts to
 * (convert.ts), and the config it is rebuilt from.
 *
 *     input → [Embedding] → recurrent stack(s) → [pooling] → [Linear | activation …] → [Softmax | LogSoftmax]
 *
 * Its parameters carry the names and layouts of the PyTorch modules the graph was exported from
 * (`emb.weight`, `rnn.weight_ih_l0`, `rnn.weight_hh_l0_reverse`, `fc.weight`, …; the names come
 * from the graph where the exporter kept them), so a file saved from it is also that module's
 * torch state_dict, and `PipelineModel.fromConfig(file.config)` + `loadModelInto` (recurjs/node)
 * rebuild it for fine-tuning. Its config is the one `recur.config` record, validated by one schema
 * (`pipelineConfigSchema`).
 *
 * The forward works time-major inside, as the ONNX recurrent operators do; `batchFirst` in the
 * config says how the graph's input (and a sequence output) is laid out, as the exported module's
 * `batch_first` did.
 */
import { z } from 'zod';
import { Tensor } from '../tensor/tensor.ts';
import { Module } from '../nn/module.ts';
import { Embedding, Linear } from '../nn/layers.ts';
import { createRecurrent, RECURRENT_KINDS, type RecurrentBase } from '../nn/recurrent.ts';
import { permute, reshape, slice } from '../autograd/ops/shape.ts';
import { logSoftmax, softmax } from '../autograd/ops/nn.ts';
import { mul, relu, sigmoid, sum, tanh } from '../autograd/ops/elementwise.ts';
import { OnnxError } from './proto.ts';

const size = z.number().int().min(1);
/** A module path as PyTorch names it: dot-separated attribute names ('rnn', 'encoder.rnn', 'head.0'). */
const modulePath = z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/, 'a module path like rnn or encoder.rnn');

/** One step of a pipeline (see the file comment). */
export const pipelineStepSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('embedding'), name: modulePath, numEmbeddings: size, embeddingDim: size }),
  z.strictObject({
    op: z.literal('recurrent'),
    name: modulePath,
    cell: z.enum(RECURRENT_KINDS),
    inputSize: size,
    hiddenSize: size,
    numLayers: size,
    bidirectional: z.boolean(),
    bias: z.boolean(),
  }),
  /** The top layer's output at the last time step, [B, D·H] (PyTorch `y[:, -1]`). */
  z.strictObject({ op: z.literal('lastStep') }),
  /** The top layer's final hidden state, directions concatenated, [B, D·H] (PyTorch `cat(h[-2], h[-1])`). */
  z.strictObject({ op: z.literal('finalState') }),
  /** The mean over time, [B, F]. */
  z.strictObject({ op: z.literal('meanOverTime') }),
  z.strictObject({ op: z.literal('linear'), name: modulePath, inFeatures: size, outFeatures: size, bias: z.boolean() }),
  z.strictObject({ op: z.literal('activation'), fn: z.enum(['relu', 'tanh', 'sigmoid']) }),
  z.strictObject({ op: z.literal('softmax') }),
  z.strictObject({ op: z.literal('logSoftmax') }),
]);

export const pipelineConfigSchema = z.strictObject({
  arch: z.literal('pipeline'),
  /** 'ids': int token ids [T, B] ([B, T] batch-first); 'features': float [T, B, inputSize]. */
  input: z.enum(['ids', 'features']),
  /** The graph's input (and sequence output) are batch-major [B, T, …]. */
  batchFirst: z.boolean(),
  /**
   * Initial-state inputs after the main input, in graph order: 'h' (and 'c' for an LSTM)
   * [L·D, B, H] of the pipeline's one recurrent module (default none: zero states).
   */
  stateInputs: z.array(z.enum(['h', 'c'])).max(2).default([]),
  /**
   * The graph's outputs in order: 'output' (the pipeline's result), the recurrent module's final
   * states 'h', 'c' [L·D, B, H], or 'hRow', 'cRow' [B, H] when L·D = 1 (default ['output']).
   */
  outputs: z.array(z.enum(['output', 'h', 'c', 'hRow', 'cRow'])).min(1).max(3).default(['output']),
  steps: z.array(pipelineStepSchema).min(1),
});

export type PipelineStep = z.infer<typeof pipelineStepSchema>;
export type PipelineConfig = z.infer<typeof pipelineConfigSchema>;
/** A config as written (stateInputs and outputs may be left out). */
export type PipelineConfigInput = z.input<typeof pipelineConfigSchema>;

/** What `PipelineModel.run` returns: the result, the final states, and the graph's outputs in order. */
export interface PipelineOutput {
  output: Tensor;
  /** The recurrent module's final states [L·D, B, H] (of the last recurrent step). */
  h: Tensor;
  c: Tensor | null;
  /** In the order of config.outputs. */
  outputs: Tensor[];
}

/** Initial states for `run`, [L·D, B, H] each. */
export interface PipelineState {
  h?: Tensor | null;
  c?: Tensor | null;
}

/** Validate a stored config; an error names the key and what was expected. */
export function parsePipelineConfig(v: unknown): PipelineConfig {
  const r = pipelineConfigSchema.safeParse(v);
  if (r.success) return r.data;
  const i = r.error.issues[0];
  const where = i.path.length ? i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '') : 'config';
  throw new OnnxError(`pipeline config: ${where}: ${i.message}`);
}

/** Token ids in the graph's input layout: flat values and their shape ([T, B], or [B, T] batch-first). */
export interface TokenIds {
  ids: ArrayLike<number>;
  shape: readonly number[];
}

function buildRecurrent(s: Extract<PipelineStep, { op: 'recurrent' }>): RecurrentBase {
  return createRecurrent(s.cell, { inputSize: s.inputSize, hiddenSize: s.hiddenSize, numLayers: s.numLayers, bidirectional: s.bidirectional, bias: s.bias });
}

/** The steps must fit together: order and feature sizes (a wrong config is refused here, not mid-forward). */
function checkChain(c: PipelineConfig): void {
  let kind: 'ids' | 'seq' | 'vec' = c.input === 'ids' ? 'ids' : 'seq';
  let width: number | null = null;
  let afterRecurrent = false;
  c.steps.forEach((s, i) => {
    const bad = (why: string): never => {
      throw new OnnxError(`pipeline config: steps[${i}] (${s.op}): ${why}`);
    };
    const need = (w: number): void => {
      if (width !== null && width !== w) bad(`expects features of size ${w}, but the previous step gives ${width}`);
    };
    if (kind === 'ids' && s.op !== 'embedding') bad('token ids must go through an embedding first');
    if (s.op === 'embedding' && kind !== 'ids') bad('an embedding must be the first step of a pipeline of token ids');
    if ((s.op === 'lastStep' || s.op === 'meanOverTime' || s.op === 'recurrent') && kind !== 'seq') bad('needs a sequence (it comes after a pooling step)');
    if (s.op === 'finalState' && !afterRecurrent) bad('must directly follow a recurrent step');
    afterRecurrent = false;
    switch (s.op) {
      case 'embedding': kind = 'seq'; width = s.embeddingDim; break;
      case 'recurrent': need(s.inputSize); width = s.hiddenSize * (s.bidirectional ? 2 : 1); afterRecurrent = true; break;
      case 'lastStep': case 'finalState': case 'meanOverTime': kind = 'vec'; break;
      case 'linear': need(s.inFeatures); width = s.outFeatures; break;
      default: break;
    }
  });
  const recs = c.steps.filter((s) => s.op === 'recurrent');
  if (recs.length === 0) throw new OnnxError('pipeline config: the steps have no recurrent layer');
  if (c.outputs.filter((o) => o === 'output').length !== 1) throw new OnnxError("pipeline config: outputs must name 'output' once");
  const states = [...c.stateInputs, ...c.outputs.filter((o) => o !== 'output')];
  if (states.length && recs.length !== 1) throw new OnnxError('pipeline config: state inputs and outputs need exactly one recurrent step');
  const rec = recs[0] as Extract<PipelineStep, { op: 'recurrent' }>;
  if (states.some((s) => s[0] === 'c') && rec.cell !== 'lstm') throw new OnnxError(`pipeline config: a cell state 'c' needs an LSTM, the recurrent step is ${rec.cell}`);
  if (states.some((s) => s.endsWith('Row')) && rec.numLayers * (rec.bidirectional ? 2 : 1) !== 1) throw new OnnxError("pipeline config: 'hRow'/'cRow' outputs need one layer and one direction");
  if (new Set(c.stateInputs).size !== c.stateInputs.length) throw new OnnxError('pipeline config: stateInputs names a state twice');
}

/** A module that only holds sub-modules (the `encoder` of `encoder.rnn`). */
class Container extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.registerModule(name, m);
  }
}

export class PipelineModel extends Module {
  readonly config: PipelineConfig;
  /** The module of each step that has parameters (null for the others), by step index. */
  private readonly modules: (Module | null)[];

  constructor(config: PipelineConfigInput) {
    super();
    this.config = parsePipelineConfig(config);
    checkChain(this.config);
    const containers = new Map<string, Container>();
    const place = <M extends Module>(path: string, m: M): M => {
      const parts = path.split('.');
      let parent: Container | null = null;
      for (let k = 0; k < parts.length - 1; k++) {
        const p = parts.slice(0, k + 1).join('.');
        let c = containers.get(p);
        if (!c) {
          c = new Container();
          containers.set(p, c);
          if (parent) parent.add(parts[k], c);
          else this.registerModule(parts[k], c);
        }
        parent = c;
      }
      const last = parts[parts.length - 1];
      return parent ? parent.add(last, m) : this.registerModule(last, m);
    };
    this.modules = this.config.steps.map((s) => {
      switch (s.op) {
        case 'embedding': return place(s.name, new Embedding(s.numEmbeddings, s.embeddingDim));
        case 'recurrent': return place(s.name, buildRecurrent(s));
        case 'linear': return place(s.name, new Linear(s.inFeatures, s.outFeatures, { bias: s.bias }));
        default: return null;
      }
    });
  }

  static fromConfig(config: unknown): PipelineModel {
    return new PipelineModel(parsePipelineConfig(config));
  }

  /** The pipeline's result only (see run). */
  forward(input: TokenIds | Tensor, state: PipelineState = {}): Tensor {
    return this.run(input, state).output;
  }

  /**
   * Run the pipeline from `state` (zeros where not given). `input`: token ids (config.input 'ids') or a float tensor [T, B, I]
   * ([B, T, I] batch-first). Returns what the converted graph's output holds: [B, F] after a
   * pooling step, else a sequence [T, B, F] ([B, T, F] batch-first).
   */
  run(input: TokenIds | Tensor, state: PipelineState = {}): PipelineOutput {
    const { batchFirst: bf } = this.config;
    let x: Tensor | null = null;
    let ids: TokenIds | null = null;
    if (this.config.input === 'ids') {
      if (input instanceof Tensor) throw new OnnxError('PipelineModel: this pipeline takes token ids { ids, shape }, not a float tensor');
      if (input.shape.length !== 2) throw new OnnxError(`PipelineModel: token ids must have shape ${bf ? '[B, T]' : '[T, B]'}, got [${input.shape.join(', ')}]`);
      ids = input;
    } else {
      if (!(input instanceof Tensor)) throw new OnnxError('PipelineModel: this pipeline takes a float tensor, not token ids');
      if (input.ndim !== 3) throw new OnnxError(`PipelineModel: input must have shape ${bf ? '[B, T, I]' : '[T, B, I]'}, got [${input.shape.join(', ')}]`);
      x = bf ? permute(input, [1, 0, 2]) : input;
    }
    let lastH: Tensor | null = null;
    let lastC: Tensor | null = null;
    let lastD = 1;
    let pooled = false;
    this.config.steps.forEach((s, i) => {
      const m = this.modules[i];
      switch (s.op) {
        case 'embedding': {
          const [A, C] = ids!.shape;
          let tm = ids!.ids;
          if (bf) {
            // [B, T] → [T, B]
            const t = new Float64Array(A * C);
            for (let b = 0; b < A; b++) for (let k = 0; k < C; k++) t[k * A + b] = tm[b * C + k];
            tm = t;
          }
          x = (m as Embedding).forward(tm, bf ? [C, A] : [A, C]);
          break;
        }
        case 'recurrent': {
          const r = (m as RecurrentBase).forward(x!, { h: state.h ?? null, c: state.c ?? null });
          x = r.output;
          lastH = r.h;
          lastC = r.c;
          lastD = s.bidirectional ? 2 : 1;
          break;
        }
        case 'lastStep': {
          const [T, B, F] = x!.shape;
          x = reshape(slice(x!, 0, T - 1, 1), [B, F]);
          pooled = true;
          break;
        }
        case 'finalState': {
          // h [L·D, B, H]: the top layer's D rows → [B, D·H], forward direction first
          const [LD, B, H] = lastH!.shape;
          const top = slice(lastH!, 0, LD - lastD, lastD);
          x = lastD === 1 ? reshape(top, [B, H]) : reshape(permute(top, [1, 0, 2]), [B, lastD * H]);
          pooled = true;
          break;
        }
        case 'meanOverTime':
          x = mul(sum(x!, 0), 1 / x!.shape[0]);
          pooled = true;
          break;
        case 'linear':
          x = (m as Linear).forward(x!);
          break;
        case 'activation':
          x = s.fn === 'relu' ? relu(x!) : s.fn === 'tanh' ? tanh(x!) : sigmoid(x!);
          break;
        case 'softmax':
          x = softmax(x!);
          break;
        case 'logSoftmax':
          x = logSoftmax(x!);
          break;
      }
    });
    const output = !pooled && bf ? permute(x!, [1, 0, 2]) : x!;
    const h = lastH!;
    const rowOf = (t: Tensor): Tensor => reshape(t, [t.shape[1], t.shape[2]]);
    const outputs = this.config.outputs.map((o) => {
      switch (o) {
        case 'output': return output;
        case 'h': return h;
        case 'hRow': return rowOf(h);
        case 'c': return lastC!;
        case 'cRow': return rowOf(lastC!);
      }
    });
    return { output, h, c: lastC, outputs };
  }
}
