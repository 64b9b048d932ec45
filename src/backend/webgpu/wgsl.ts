/// <reference types="@webgpu/types" />
/**
 * How a WGSL kernel is declared and turned into a shader module. A kernel names its float32 array
 * arguments, its int32 array arguments and its scalar parameters; its body is written with those
 * names. The runtime binds each distinct buffer once, so the source is generated per aliasing
 * pattern: argument names are rewritten to the binding that holds them (an in-place call such as
 * unary(op, n, x, x) then reads and writes one binding).
 *
 * Parameters live in one 256-byte uniform block of 32-bit words: `name` is a u32, `name:f` an f32,
 * `name:i` an i32, `name:N` an array of N u32 read as name(i). The body sees `gid` (the invocation's
 * index over the whole 1-D grid), `lid` (its index in the workgroup), `group` (the workgroup's
 * linear index) and `wid` (the workgroup id as launched).
 */
import { PARAM_BYTES } from './runtime.ts';

export interface KernelSpec {
  name: string;
  /** float32 array arguments, in the order the backend passes buffers. */
  f32: readonly string[];
  /** int32 array arguments (host integers uploaded per call). */
  i32?: readonly string[];
  params: readonly string[];
  /** Invocations per workgroup (1-D); default 256. */
  wg?: number;
  /** Module-scope WGSL (helper functions, workgroup memory). */
  module?: string;
  body: string;
}

interface ParamSlot {
  name: string;
  kind: 'u' | 'f' | 'i' | 'array';
  word: number;
  length: number;
}

/** Helpers every kernel module has. */
const PRELUDE = /* wgsl */ `
fn pu(i: u32) -> u32 { return P.w[i >> 2u][i & 3u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
fn pi(i: u32) -> i32 { return bitcast<i32>(pu(i)); }
// NaN and ±Inf by their bits: WGSL lets a compiler assume floats are finite, so x != x is no test
fn nonFinite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u; }
fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
// built from a variable: a constant NaN or infinity is a compile error in WGSL
fn nan() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }
fn negInf() -> f32 { var bits = 0xff800000u; return bitcast<f32>(bits); }
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
// tanh from exp(−2|x|): no overflow for any |x| (a builtin tanh may be sinh/cosh, NaN at large |x|)
fn tanh_(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  let t = (1.0 - e) / (1.0 + e);
  return select(t, -t, x < 0.0);
}
`;

export class WgslKernel {
  readonly name: string;
  private readonly spec: KernelSpec;
  private readonly slots: ParamSlot[] = [];
  private readonly words: number;

  constructor(spec: KernelSpec) {
    this.spec = spec;
    this.name = spec.name;
    let word = 0;
    for (const p of spec.params) {
      const [name, kind] = p.split(':');
      if (kind === undefined || kind === 'f' || kind === 'i') {
        this.slots.push({ name, kind: kind === undefined ? 'u' : (kind as 'f' | 'i'), word, length: 1 });
        word += 1;
      } else {
        const length = Number(kind);
        this.slots.push({ name, kind: 'array', word, length });
        word += length;
      }
    }
    if (word * 4 > PARAM_BYTES) throw new Error(`kernel ${spec.name}: ${word} parameter words exceed ${PARAM_BYTES / 4}`);
    this.words = word;
  }

  /** The parameter words for one call, from values by name (arrays padded with 0). */
  pack(values: Record<string, number | boolean | readonly number[]>): Uint32Array {
    const w = new Uint32Array(this.words);
    const f = new Float32Array(w.buffer);
    const i = new Int32Array(w.buffer);
    for (const s of this.slots) {
      const v = values[s.name];
      if (v === undefined) throw new Error(`kernel ${this.name}: parameter '${s.name}' missing`);
      if (s.kind === 'array') {
        const a = v as readonly number[];
        for (let k = 0; k < a.length; k++) w[s.word + k] = a[k];
      } else if (s.kind === 'f') f[s.word] = v as number;
      else if (s.kind === 'i') i[s.word] = v as number;
      else w[s.word] = typeof v === 'boolean' ? Number(v) : (v as number);
    }
    return w;
  }

  /** The WGSL source for one aliasing pattern: aliases[k] is the binding slot of f32 argument k. */
  source(aliases: readonly number[], nI32: number): string {
    const s = this.spec;
    const wg = s.wg ?? 256;
    const rename = new Map<string, string>();
    s.f32.forEach((a, k) => rename.set(a, `b${aliases[k]}`));
    const i32 = s.i32 ?? [];
    if (nI32 !== i32.length) throw new Error(`kernel ${s.name}: ${nI32} int arrays bound, ${i32.length} declared`);
    const rewrite = (code: string): string =>
      code.replace(/(?<!\.)\b[A-Za-z_]\w*\b/g, (id) => rename.get(id) ?? id);
    const decls: string[] = ['struct Params { w: array<vec4<u32>, ' + PARAM_BYTES / 16 + '> }', '@group(0) @binding(0) var<uniform> P: Params;'];
    const nF32 = Math.max(-1, ...aliases) + 1;
    for (let b = 0; b < nF32; b++) decls.push(`@group(0) @binding(${1 + b}) var<storage, read_write> b${b}: array<f32>;`);
    i32.forEach((name, k) => decls.push(`@group(0) @binding(${32 + k}) var<storage, read_write> ${name}: array<i32>;`));
    const lets: string[] = [];
    for (const p of this.slots) {
      if (p.kind === 'array') decls.push(`fn ${p.name}(i: u32) -> u32 { return pu(${p.word}u + i); }`);
      else lets.push(`  let ${p.name} = p${p.kind}(${p.word}u);`);
    }
    return [
      decls.join('\n'),
      PRELUDE,
      rewrite(s.module ?? ''),
      `const WG = ${wg}u;`,
      `@compute @workgroup_size(${wg})`,
      'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {',
      '  let group = wid.y * nwg.x + wid.x;',
      '  let gid = group * WG + lid;',
      lets.join('\n'),
      rewrite(s.body),
      '}',
    ].join('\n');
  }
}
