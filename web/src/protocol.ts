/** The messages between the page (main.ts) and a section's worker (worker.ts). */

export type SectionKind = 'charlm' | 'names' | 'namegen' | 'caption';

export interface BackendInfo {
  name: string;
  threads: number;
  isolated: boolean;
  variant: string;
  /** With the WebGPU switch on: the adapter the section models train on, or why WebGPU did not load. */
  gpu?: { adapter: string; software: boolean } | { error: string };
}

/** The model and batch choices of a section (what the controls set). */
export interface ModelOptions {
  cell: 'rnn' | 'lstm' | 'gru';
  hiddenSize: number;
  numLayers: number;
  batchSize: number;
  seqLen: number;
  seed: number;
}

/** The bundled data a section trains on (web/make-data.mjs writes it). */
export interface SectionData {
  train?: string;
  val?: string;
  /** Text pasted by the user (char-LM): split 90/10 by position. */
  custom?: string;
  labels?: string[];
  names?: { train: [string, number][]; val: [string, number][] };
}

export interface BuildRequest {
  type: 'build';
  kind: SectionKind;
  options: ModelOptions;
  data: SectionData;
}

type WithId<T> = T & { id: number };

export type Request = WithId<
  | { type: 'init'; threads: number; webgpu: boolean }
  | BuildRequest
  | { type: 'start'; lr: number; clipNorm: number; evalEvery: number }
  | { type: 'pause' }
  | { type: 'sample'; prime: string; length: number; temperature: number; seed: number }
  | { type: 'inspect'; text: string }
  | { type: 'classify'; text: string }
  | { type: 'generate'; condition: string; count: number; temperature: number; seed: number }
  | { type: 'caption'; seed: number; indices: number[] }
  | { type: 'download' }
  | { type: 'diagnose'; lag: number; steps: number; hiddenSize: number }
  | { type: 'explode'; lag: number; steps: number; lr: number; clip: number; cell: 'rnn' | 'lstm' | 'gru' }
  | { type: 'open'; name: string; bytes: Uint8Array }
  | { type: 'run'; input: string }
>;

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export type WorkerEvent =
  | { type: 'step'; step: number; loss: number; gradNorm: number; clipped: boolean; tokensPerSec: number }
  | { type: 'eval'; step: number; loss: number; metrics: Record<string, number> }
  | { type: 'state'; running: boolean; step?: number }
  | { type: 'log'; message: string; error?: boolean };
