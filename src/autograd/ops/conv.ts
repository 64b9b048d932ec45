/**
 * 2-D convolution and pooling, composed from existing backend kernels (no kernel of their own, so
 * every backend that implements the interface runs them):
 *
 * conv2d (NCHW, PyTorch's `F.conv2d` without groups/dilation) as im2col + GEMM:
 *   Xp   [N·H·W + 1, C]      = x in NHWC layout plus one zero row (the padding value)      (permute)
 *   Cols [N·Ho·Wo, kh·kw·C]  = Xp[idx]                                                     (gatherRows)
 *   Y    [N·Ho·Wo, O]        = Cols · Wmatᵀ + b,  Wmat [O, kh·kw·C] = W permuted to OHWC   (gemm)
 *   y    [N, O, Ho, Wo]      = Y permuted back                                             (permute)
 * where idx[(n, i, j, ki, kj)] is the row of input pixel (n, i·s + ki − p, j·s + kj − p), or the
 * zero row when that pixel lies in the padding. The table is computed once per geometry (cached).
 * Backward mirrors it:
 *   dY = dy permuted to NHWC;  dWmat = dYᵀ · Cols;  db = Σ_rows dY;  dCols = dY · Wmat
 *   dXp += scatter of dCols by idx (scatterAddRows), then drop the zero row and permute to NCHW.
 *
 * maxPool2d: a window gather into [kh·kw, outputs] (gatherRows with one column), then the max over
 * the window elements as the steps of `maxOverTime`; backward gives dy to each window's winner
 * (maxOverTimeBackward) and scatters it back (scatterAddRows); its window table is cached per
 * geometry, as conv's. Nothing is read on the host, so it runs on a GPU as it does on the CPU. Ties
 * go to the first element in row-major window order and a NaN wins, as PyTorch. avgPool2d: a window gather into [outputs, kh·kw], a row sum and a scale;
 * backward scatters dy/(kh·kw) to every window element.
 *
 * Shortcut admitted: the im2col buffer costs N·Ho·Wo·kh·kw·C elements — fine for the small images
 * of the captioning task; a direct convolution kernel would avoid it.
 */
import { Tensor, shapeStr } from '../../tensor/tensor.ts';
import { accumulateGrad, needsGrad, record } from '../tape.ts';
import { newLike, sameBackendAndDType } from './util.ts';
import { checkOptions } from '../../util/options.ts';

export interface Conv2dOptions {
  /** Stride: one number for both axes, or [sh, sw] (default 1). */
  stride?: number | readonly [number, number];
  /** Zero padding on each side: one number or [ph, pw] (default 0). */
  padding?: number | readonly [number, number];
}

function pair(where: string, name: string, v: number | readonly [number, number] | undefined, dflt: number, min: number): [number, number] {
  if (v !== undefined && typeof v !== 'number' && !(Array.isArray(v) && v.length === 2)) throw new TypeError(`${where}: '${name}' must be a number or [h, w], got ${JSON.stringify(v)}`);
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  for (const x of p) {
    if (!Number.isInteger(x) || x < min) throw new RangeError(`${where}: '${name}' must be integer(s) ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return p;
}

/** Output size of a window sweep: ⌊(in + 2p − k) / s⌋ + 1. */
export function convOutSize(inSize: number, k: number, s: number, p: number): number {
  return Math.floor((inSize + 2 * p - k) / s) + 1;
}

interface Im2col {
  Ho: number;
  Wo: number;
  /** [N·Ho·Wo·kh·kw] row of Xp for each (output pixel, kernel tap). */
  idx: Int32Array;
}

/** Index tables by geometry (conv's im2col, max pooling's windows): geometries repeat batch after batch. */
const geometryTables = new Map<string, unknown>();

function cachedTable<T>(key: string, build: () => T): T {
  const hit = geometryTables.get(key);
  if (hit) return hit as T;
  const t = build();
  if (geometryTables.size > 64) geometryTables.clear(); // bound the cache
  geometryTables.set(key, t);
  return t;
}

function im2colTable(N: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number): Im2col {
  return cachedTable(`im2col ${N},${H},${W},${kh},${kw},${sh},${sw},${ph},${pw}`, () => buildIm2col(N, H, W, kh, kw, sh, sw, ph, pw));
}

function buildIm2col(N: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number): Im2col {
  const Ho = convOutSize(H, kh, sh, ph);
  const Wo = convOutSize(W, kw, sw, pw);
  const zeroRow = N * H * W;
  const idx = new Int32Array(N * Ho * Wo * kh * kw);
  let k = 0;
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        for (let a = 0; a < kh; a++) {
          const r = i * sh + a - ph;
          for (let b = 0; b < kw; b++) {
            const c = j * sw + b - pw;
            idx[k++] = r >= 0 && r < H && c >= 0 && c < W ? (n * H + r) * W + c : zeroRow;
          }
        }
      }
    }
  }
  return { Ho, Wo, idx };
}

/**
 * y = conv2d(x, weight) + bias. x [N, C, H, W], weight [O, C, kh, kw], bias [O] or null →
 * y [N, O, Ho, Wo] with Ho = ⌊(H + 2p − kh)/s⌋ + 1 (likewise Wo).
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}): Tensor {
  const where = 'conv2d';
  checkOptions(where, o, ['stride', 'padding']);
  sameBackendAndDType(where, x, weight, ...(bias ? [bias] : []));
  if (x.ndim !== 4) throw new RangeError(`${where}: input must be [N, C, H, W], got ${shapeStr(x.shape)}`);
  if (weight.ndim !== 4) throw new RangeError(`${where}: weight must be [O, C, kh, kw], got ${shapeStr(weight.shape)}`);
  const [N, C, H, W] = x.shape;
  const [O, Cw, kh, kw] = weight.shape;
  if (Cw !== C) throw new RangeError(`${where}: weight ${shapeStr(weight.shape)} expects ${Cw} input channels, input ${shapeStr(x.shape)} has ${C}`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== O)) throw new RangeError(`${where}: bias must be [${O}], got ${shapeStr(bias.shape)}`);
  const [sh, sw] = pair(where, 'stride', o.stride, 1, 1);
  const [ph, pw] = pair(where, 'padding', o.padding, 0, 0);
  if (H + 2 * ph < kh || W + 2 * pw < kw) {
    throw new RangeError(`${where}: kernel ${kh}×${kw} is larger than the padded input ${H + 2 * ph}×${W + 2 * pw} (input ${shapeStr(x.shape)}, padding ${ph},${pw})`);
  }
  const { Ho, Wo, idx } = im2colTable(N, H, W, kh, kw, sh, sw, ph, pw);
  const be = x.backend;
  const dtype = x.dtype;
  const K = kh * kw * C;
  const P = N * Ho * Wo; // output pixels
  // Xp [N·H·W + 1, C]: NHWC copy of x plus the zero row
  const xp = be.alloc((N * H * W + 1) * C, dtype);
  be.permute(x.storage, [N, C, H, W], [0, 2, 3, 1], xp);
  // Wmat [O, kh·kw·C]
  const wmat = be.alloc(O * K, dtype);
  be.permute(weight.storage, [O, C, kh, kw], [0, 2, 3, 1], wmat);
  // Cols [P, K]
  const cols = be.alloc(P * K, dtype);
  be.gatherRows(C, xp, idx, cols);
  // Y [P, O] = Cols · Wmatᵀ + b
  const yp = be.alloc(P * O, dtype);
  be.gemm(false, true, P, O, K, 1, cols, 0, K, wmat, 0, K, 0, yp, 0, O);
  if (bias) be.addRowVector(P, O, bias.storage, 0, yp, 0);
  const out = newLike(x, [N, O, Ho, Wo]);
  be.permute(yp, [N, Ho, Wo, O], [0, 3, 1, 2], out.storage);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  if (needsGrad(...inputs)) {
    record('conv2d', inputs, [out], () => {
      // dY [P, O] in NHWC order
      const dY = be.alloc(P * O, dtype);
      be.permute(out.grad!.storage, [N, O, Ho, Wo], [0, 2, 3, 1], dY);
      if (weight.requiresGrad) {
        // dWmat [O, K] = dYᵀ · Cols, then back to [O, C, kh, kw]
        const dWmat = be.alloc(O * K, dtype);
        be.gemm(true, false, O, K, P, 1, dY, 0, O, cols, 0, K, 0, dWmat, 0, K);
        const dW = newLike(weight);
        be.permute(dWmat, [O, kh, kw, C], [0, 3, 1, 2], dW.storage);
        accumulateGrad(weight, dW.storage, true);
      }
      if (bias && bias.requiresGrad) {
        // db = Σ_rows dY
        const db = newLike(bias);
        be.sumRowsBackward(P, O, dY, 0, db.storage, 0);
        accumulateGrad(bias, db.storage, true);
      }
      if (x.requiresGrad) {
        // dCols [P, K] = dY · Wmat;  dXp[idx] += dCols (padding taps land on the zero row, dropped)
        const dCols = be.alloc(P * K, dtype);
        be.gemm(false, false, P, K, O, 1, dY, 0, O, wmat, 0, K, 0, dCols, 0, K);
        const dXp = be.alloc((N * H * W + 1) * C, dtype);
        be.scatterAddRows(C, dCols, idx, dXp);
        const dx = newLike(x);
        // the permute reads the first N·H·W·C elements: the zero row at the end is left out
        be.permute(dXp, [N, H, W, C], [0, 3, 1, 2], dx.storage);
        accumulateGrad(x, dx.storage, true);
      }
    });
  }
  return out;
}

export interface Pool2dOptions {
  /** Stride: one number or [sh, sw] (default: the kernel size, as PyTorch). */
  stride?: number | readonly [number, number];
  /** Padding on each side (max pooling only; padded positions never win). Default 0. */
  padding?: number | readonly [number, number];
}

function poolGeometry(where: string, x: Tensor, kernel: number | readonly [number, number], o: Pool2dOptions, allowPadding: boolean) {
  checkOptions(where, o, ['stride', 'padding']);
  if (x.ndim !== 4) throw new RangeError(`${where}: input must be [N, C, H, W], got ${shapeStr(x.shape)}`);
  const [kh, kw] = pair(where, 'kernel', kernel, 1, 1);
  const [sh, sw] = pair(where, 'stride', o.stride ?? [kh, kw], 1, 1);
  const [ph, pw] = pair(where, 'padding', o.padding, 0, 0);
  if (!allowPadding && (ph || pw)) throw new RangeError(`${where}: padding is not supported (got ${ph},${pw})`);
  if (2 * ph > kh || 2 * pw > kw) throw new RangeError(`${where}: padding must be at most half the kernel (kernel ${kh}×${kw}, padding ${ph},${pw}), as PyTorch`);
  const [N, C, H, W] = x.shape;
  const Ho = convOutSize(H, kh, sh, ph);
  const Wo = convOutSize(W, kw, sw, pw);
  if (Ho < 1 || Wo < 1) throw new RangeError(`${where}: kernel ${kh}×${kw} is larger than the input ${shapeStr(x.shape)}`);
  return { N, C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo };
}

/**
 * idx[(a, b), (nc, i, j)] = flat index into x of window element (a, b) of output (nc, i, j),
 * element-major so that the windows are the "steps" of maxOverTime. A position in the padding
 * repeats the window's first real element: it can only tie with it, and a tie goes to the earlier
 * position — that same element — so the max and its gradient are PyTorch's.
 */
function poolWindows(NC: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number, Ho: number, Wo: number): Int32Array {
  const KK = kh * kw, M = NC * Ho * Wo;
  const idx = new Int32Array(KK * M);
  let m = 0;
  for (let nc = 0; nc < NC; nc++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++, m++) {
        const r0 = Math.max(0, i * sh - ph), c0 = Math.max(0, j * sw - pw);
        const first = nc * H * W + r0 * W + c0;
        for (let a = 0; a < kh; a++) {
          const r = i * sh + a - ph;
          for (let b = 0; b < kw; b++) {
            const c = j * sw + b - pw;
            idx[(a * kw + b) * M + m] = r < 0 || r >= H || c < 0 || c >= W ? first : nc * H * W + r * W + c;
          }
        }
      }
    }
  }
  return idx;
}

/** Max pooling over kh×kw windows: x [N, C, H, W] → [N, C, Ho, Wo]. */
export function maxPool2d(x: Tensor, kernel: number | readonly [number, number], o: Pool2dOptions = {}): Tensor {
  const { N, C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo } = poolGeometry('maxPool2d', x, kernel, o, true);
  const be = x.backend;
  const KK = kh * kw;
  const M = N * C * Ho * Wo;
  const idx = cachedTable(`maxPool ${N * C},${H},${W},${kh},${kw},${sh},${sw},${ph},${pw}`, () => poolWindows(N * C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo));
  // win [KK, M] = x[idx];  out [M] = the max over the KK window elements
  const win = be.alloc(KK * M, x.dtype);
  be.gatherRows(1, x.storage, idx, win);
  const out = newLike(x, [N, C, Ho, Wo]);
  be.maxOverTime(KK, M, 1, win, null, out.storage);
  if (needsGrad(x)) {
    record('maxPool2d', [x], [out], () => {
      // dwin gets dy at each window's winner; dx[idx] += dwin
      const dwin = be.alloc(KK * M, x.dtype);
      be.maxOverTimeBackward(KK, M, 1, win, null, out.storage, out.grad!.storage, dwin);
      const dx = newLike(x);
      be.scatterAddRows(1, dwin, idx, dx.storage);
      accumulateGrad(x, dx.storage, true);
    });
  }
  return out;
}

/** Average pooling over kh×kw windows (no padding): x [N, C, H, W] → [N, C, Ho, Wo]. */
export function avgPool2d(x: Tensor, kernel: number | readonly [number, number], o: Pool2dOptions = {}): Tensor {
  const { N, C, H, W, kh, kw, sh, sw, Ho, Wo } = poolGeometry('avgPool2d', x, kernel, o, false);
  const be = x.backend;
  const dtype = x.dtype;
  const KK = kh * kw;
  const M = N * C * Ho * Wo;
  // idx[(n, c, i, j, a, b)] = flat index into x of each window element
  const idx = new Int32Array(M * KK);
  let k = 0;
  for (let nc = 0; nc < N * C; nc++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) idx[k++] = nc * H * W + (i * sh + a) * W + (j * sw + b);
      }
    }
  }
  // win [M, KK] = x[idx];  out = Σ_cols win / KK
  const win = be.alloc(M * KK, dtype);
  be.gatherRows(1, x.storage, idx, win);
  const out = newLike(x, [N, C, Ho, Wo]);
  be.reduceSum(win, [M, KK], out.storage, [M, 1]);
  be.scale(M, 1 / KK, out.storage, 0);
  if (needsGrad(x)) {
    record('avgPool2d', [x], [out], () => {
      // dwin[m, :] = dy[m] / KK (broadcast), then dx[idx] += dwin
      const dwin = be.alloc(M * KK, dtype);
      const zero = be.alloc(1, dtype);
      be.binary('add', out.grad!.storage, [M, 1], zero, [1, 1], dwin, [M, KK]);
      be.scale(M * KK, 1 / KK, dwin, 0);
      const dx = newLike(x);
      be.scatterAddRows(1, dwin, idx, dx.storage);
      accumulateGrad(x, dx.storage, true);
    });
  }
  return out;
}
