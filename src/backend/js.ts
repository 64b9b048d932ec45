/**
 * The plain-TypeScript reference backend: every kernel written as directly as the math allows.
 * It is the oracle every fast backend is tested against, and it runs both float32 and float64
 * (float64 for finite-difference gradient checks). Loop orders are chosen so the innermost loop
 * walks memory contiguously; nothing cleverer than that.
 */
import {
  type Activation, type Backend, BackendError, type BinaryOp, type CellStep, type Data, type DType,
  type Storage, type UnaryOp,
} from './interface.ts';
import { odometerStep, shapeSize, shapeStrides, stridedCopy } from '../util/shape.ts';
import { maxOverTimeBackwardLoop, maxOverTimeLoop } from './time-pool.ts';

export class JsStorage implements Storage {
  constructor(readonly backend: Backend, readonly data: Data) {}
  get dtype(): DType {
    return this.data instanceof Float64Array ? 'float64' : 'float32';
  }
  get size(): number {
    return this.data.length;
  }
}

function d(s: Storage): Data {
  return (s as JsStorage).data;
}

function makeArray(dtype: DType, n: number): Data {
  if (dtype === 'float32') return new Float32Array(n);
  if (dtype === 'float64') return new Float64Array(n);
  throw new BackendError(`js backend: unknown dtype '${String(dtype)}' (expected 'float32' or 'float64')`);
}

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** Is row b masked out (inactive) at step t? */
function inactive(s: CellStep, b: number): boolean {
  return s.lengths !== null && s.t >= s.lengths[b];
}

export class JsBackend implements Backend {
  readonly name = 'js';

  alloc(size: number, dtype: DType): Storage {
    if (!Number.isSafeInteger(size) || size < 0) throw new BackendError(`js backend: cannot allocate ${size} elements`);
    return new JsStorage(this, makeArray(dtype, size));
  }

  fromArray(data: ArrayLike<number>, dtype: DType): Storage {
    const a = makeArray(dtype, data.length);
    a.set(data);
    return new JsStorage(this, a);
  }

  read(s: Storage, offset = 0, n = s.size - offset): Data {
    return d(s).slice(offset, offset + n);
  }

  write(s: Storage, data: ArrayLike<number>, offset = 0): void {
    d(s).set(data, offset);
  }

  copy(src: Storage, srcOff: number, dst: Storage, dstOff: number, n: number): void {
    d(dst).set(d(src).subarray(srcOff, srcOff + n), dstOff);
  }

  fill(dst: Storage, value: number, offset: number, n: number): void {
    d(dst).fill(value, offset, offset + n);
  }

  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    As: Storage, aOff: number, lda: number, Bs: Storage, bOff: number, ldb: number,
    beta: number, Cs: Storage, cOff: number, ldc: number,
  ): void {
    const A = d(As), B = d(Bs), C = d(Cs);
    // C = beta·C first (beta = 0 clears, so stale NaNs never leak in).
    for (let i = 0; i < M; i++) {
      const c0 = cOff + i * ldc;
      if (beta === 0) C.fill(0, c0, c0 + N);
      else if (beta !== 1) for (let j = 0; j < N; j++) C[c0 + j] *= beta;
    }
    if (alpha === 0 || K === 0) return;
    if (!transA && !transB) {
      // C[i, :] += alpha·A[i, k]·B[k, :]
      for (let i = 0; i < M; i++) {
        const c0 = cOff + i * ldc;
        for (let k = 0; k < K; k++) {
          const a = alpha * A[aOff + i * lda + k];
          if (a === 0) continue;
          const b0 = bOff + k * ldb;
          for (let j = 0; j < N; j++) C[c0 + j] += a * B[b0 + j];
        }
      }
    } else if (!transA && transB) {
      // C[i, j] += alpha·dot(A[i, :], B[j, :])
      for (let i = 0; i < M; i++) {
        const a0 = aOff + i * lda;
        const c0 = cOff + i * ldc;
        for (let j = 0; j < N; j++) {
          const b0 = bOff + j * ldb;
          let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          let k = 0;
          for (; k + 3 < K; k += 4) {
            s0 += A[a0 + k] * B[b0 + k];
            s1 += A[a0 + k + 1] * B[b0 + k + 1];
            s2 += A[a0 + k + 2] * B[b0 + k + 2];
            s3 += A[a0 + k + 3] * B[b0 + k + 3];
          }
          for (; k < K; k++) s0 += A[a0 + k] * B[b0 + k];
          C[c0 + j] += alpha * (s0 + s1 + s2 + s3);
        }
      }
    } else if (transA && !transB) {
      // C[i, :] += alpha·A[k, i]·B[k, :]
      for (let k = 0; k < K; k++) {
        const a0 = aOff + k * lda;
        const b0 = bOff + k * ldb;
        for (let i = 0; i < M; i++) {
          const a = alpha * A[a0 + i];
          if (a === 0) continue;
          const c0 = cOff + i * ldc;
          for (let j = 0; j < N; j++) C[c0 + j] += a * B[b0 + j];
        }
      }
    } else {
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += A[aOff + k * lda + i] * B[bOff + j * ldb + k];
          C[cOff + i * ldc + j] += alpha * s;
        }
      }
    }
  }

  axpy(n: number, alpha: number, xs: Storage, xOff: number, ys: Storage, yOff: number): void {
    const x = d(xs), y = d(ys);
    if (alpha === 1) for (let i = 0; i < n; i++) y[yOff + i] += x[xOff + i];
    else for (let i = 0; i < n; i++) y[yOff + i] += alpha * x[xOff + i];
  }

  scale(n: number, alpha: number, xs: Storage, xOff: number): void {
    const x = d(xs);
    for (let i = 0; i < n; i++) x[xOff + i] *= alpha;
  }

  addRowVector(rows: number, cols: number, bias: Storage, bOff: number, Xs: Storage, xOff: number): void {
    const b = d(bias), X = d(Xs);
    for (let r = 0; r < rows; r++) {
      const x0 = xOff + r * cols;
      for (let c = 0; c < cols; c++) X[x0 + c] += b[bOff + c];
    }
  }

  sumRowsBackward(rows: number, cols: number, Xs: Storage, xOff: number, out: Storage, oOff: number): void {
    const X = d(Xs), o = d(out);
    for (let r = 0; r < rows; r++) {
      const x0 = xOff + r * cols;
      for (let c = 0; c < cols; c++) o[oOff + c] += X[x0 + c];
    }
  }

  unary(op: UnaryOp, n: number, xs: Storage, outs: Storage): void {
    const x = d(xs), o = d(outs);
    switch (op) {
      case 'neg': for (let i = 0; i < n; i++) o[i] = -x[i]; break;
      case 'exp': for (let i = 0; i < n; i++) o[i] = Math.exp(x[i]); break;
      case 'log': for (let i = 0; i < n; i++) o[i] = Math.log(x[i]); break;
      case 'tanh': for (let i = 0; i < n; i++) o[i] = Math.tanh(x[i]); break;
      case 'sigmoid': for (let i = 0; i < n; i++) o[i] = sigmoid(x[i]); break;
      case 'relu': for (let i = 0; i < n; i++) o[i] = x[i] > 0 ? x[i] : 0; break;
      case 'sqrt': for (let i = 0; i < n; i++) o[i] = Math.sqrt(x[i]); break;
      case 'square': for (let i = 0; i < n; i++) o[i] = x[i] * x[i]; break;
      case 'abs': for (let i = 0; i < n; i++) o[i] = Math.abs(x[i]); break;
      case 'softplus': for (let i = 0; i < n; i++) o[i] = Math.max(x[i], 0) + Math.log1p(Math.exp(-Math.abs(x[i]))); break;
      default: throw new BackendError(`js backend: unknown unary op '${String(op)}'`);
    }
  }

  unaryBackward(op: UnaryOp, n: number, xs: Storage, ys: Storage, dys: Storage, dxs: Storage): void {
    const x = d(xs), y = d(ys), dy = d(dys), dx = d(dxs);
    switch (op) {
      case 'neg': for (let i = 0; i < n; i++) dx[i] -= dy[i]; break;
      case 'exp': for (let i = 0; i < n; i++) dx[i] += dy[i] * y[i]; break;
      case 'log': for (let i = 0; i < n; i++) dx[i] += dy[i] / x[i]; break;
      case 'tanh': for (let i = 0; i < n; i++) dx[i] += dy[i] * (1 - y[i] * y[i]); break;
      case 'sigmoid': for (let i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1 - y[i]); break;
      case 'relu': for (let i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : 0; break;
      case 'sqrt': for (let i = 0; i < n; i++) dx[i] += dy[i] * 0.5 / y[i]; break;
      case 'square': for (let i = 0; i < n; i++) dx[i] += dy[i] * 2 * x[i]; break;
      case 'abs': for (let i = 0; i < n; i++) dx[i] += dy[i] * Math.sign(x[i]); break;
      case 'softplus': for (let i = 0; i < n; i++) dx[i] += dy[i] * sigmoid(x[i]); break;
      default: throw new BackendError(`js backend: unknown unary op '${String(op)}'`);
    }
  }

  binary(op: BinaryOp, as: Storage, aShape: readonly number[], bs: Storage, bShape: readonly number[], outs: Storage, outShape: readonly number[]): void {
    const a = d(as), b = d(bs), o = d(outs);
    const rank = outShape.length;
    if (aShape.length !== rank || bShape.length !== rank) {
      throw new BackendError(`js backend: binary expects equal ranks, got ${aShape.length}, ${bShape.length}, ${rank}`);
    }
    const n = shapeSize(outShape);
    const f = binaryFn(op);
    // Fast paths: same shape, or b is a row vector broadcast over leading axes.
    if (shapeSize(aShape) === n && shapeSize(bShape) === n) {
      for (let i = 0; i < n; i++) o[i] = f(a[i], b[i]);
      return;
    }
    const as_ = shapeStrides(aShape).map((s, i) => (aShape[i] === 1 ? 0 : s));
    const bs_ = shapeStrides(bShape).map((s, i) => (bShape[i] === 1 ? 0 : s));
    const idx = new Array<number>(rank).fill(0);
    let ai = 0, bi = 0;
    for (let i = 0; i < n; i++) {
      o[i] = f(a[ai], b[bi]);
      // increment the multi-index
      for (let ax = rank - 1; ax >= 0; ax--) {
        idx[ax]++;
        ai += as_[ax];
        bi += bs_[ax];
        if (idx[ax] < outShape[ax]) break;
        ai -= as_[ax] * outShape[ax];
        bi -= bs_[ax] * outShape[ax];
        idx[ax] = 0;
      }
    }
  }

  reduceSum(xs: Storage, xShape: readonly number[], outs: Storage, outShape: readonly number[]): void {
    const x = d(xs), o = d(outs);
    const rank = xShape.length;
    if (outShape.length !== rank) throw new BackendError(`js backend: reduceSum expects equal ranks, got ${rank} and ${outShape.length}`);
    o.fill(0, 0, shapeSize(outShape));
    const os = shapeStrides(outShape).map((s, i) => (outShape[i] === 1 ? 0 : s));
    const n = shapeSize(xShape);
    const idx = new Array<number>(rank).fill(0);
    let oi = 0;
    for (let i = 0; i < n; i++) {
      o[oi] += x[i];
      oi += odometerStep(idx, xShape, os);
    }
  }

  sumSquares(n: number, xs: Storage, xOff: number): number {
    const x = d(xs);
    let s = 0;
    for (let i = 0; i < n; i++) s += x[xOff + i] * x[xOff + i];
    return s;
  }

  findNonFinite(n: number, xs: Storage, xOff: number): number {
    const x = d(xs);
    for (let i = 0; i < n; i++) if (!Number.isFinite(x[xOff + i])) return i;
    return -1;
  }

  maxAbs(n: number, xs: Storage, xOff: number): number {
    const x = d(xs);
    let m = 0;
    for (let i = 0; i < n; i++) {
      const a = Math.abs(x[xOff + i]);
      if (a !== a) return NaN;
      if (a > m) m = a;
    }
    return m;
  }

  clamp(n: number, xs: Storage, xOff: number, lo: number, hi: number): void {
    const x = d(xs);
    for (let i = 0; i < n; i++) {
      const v = x[xOff + i];
      x[xOff + i] = v < lo ? lo : v > hi ? hi : v;
    }
  }

  permute(xs: Storage, shape: readonly number[], perm: readonly number[], outs: Storage): void {
    const inStrides = shapeStrides(shape);
    const outShape = perm.map((p) => shape[p]);
    const st = perm.map((p) => inStrides[p]); // input stride for each output axis
    stridedCopy(d(xs), 0, st, outShape, d(outs), shapeSize(shape));
  }

  sliceAxis(xs: Storage, shape: readonly number[], axis: number, start: number, len: number, outs: Storage): void {
    const x = d(xs), o = d(outs);
    const outer = shapeSize(shape.slice(0, axis));
    const inner = shapeSize(shape.slice(axis + 1));
    const dim = shape[axis];
    for (let p = 0; p < outer; p++) {
      const src = (p * dim + start) * inner;
      o.set(x.subarray(src, src + len * inner), p * len * inner);
    }
  }

  addIntoAxis(srcs: Storage, srcShape: readonly number[], dsts: Storage, dstShape: readonly number[], axis: number, start: number): void {
    const s = d(srcs), o = d(dsts);
    const outer = shapeSize(srcShape.slice(0, axis));
    const inner = shapeSize(srcShape.slice(axis + 1));
    const len = srcShape[axis];
    const dim = dstShape[axis];
    for (let p = 0; p < outer; p++) {
      const dst = (p * dim + start) * inner;
      const src = p * len * inner;
      for (let i = 0; i < len * inner; i++) o[dst + i] += s[src + i];
    }
  }

  softmax(rows: number, cols: number, xs: Storage, outs: Storage, log: boolean): void {
    const x = d(xs), o = d(outs);
    for (let r = 0; r < rows; r++) {
      const r0 = r * cols;
      let max = -Infinity;
      for (let c = 0; c < cols; c++) if (x[r0 + c] > max) max = x[r0 + c];
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(x[r0 + c] - max);
      if (log) {
        const lse = max + Math.log(sum);
        for (let c = 0; c < cols; c++) o[r0 + c] = x[r0 + c] - lse;
      } else {
        for (let c = 0; c < cols; c++) o[r0 + c] = Math.exp(x[r0 + c] - max) / sum;
      }
    }
  }

  softmaxBackward(rows: number, cols: number, ys: Storage, dys: Storage, dxs: Storage, log: boolean): void {
    const y = d(ys), dy = d(dys), dx = d(dxs);
    for (let r = 0; r < rows; r++) {
      const r0 = r * cols;
      if (log) {
        // y = x − lse: dx = dy − softmax·Σdy
        let sdy = 0;
        for (let c = 0; c < cols; c++) sdy += dy[r0 + c];
        for (let c = 0; c < cols; c++) dx[r0 + c] += dy[r0 + c] - Math.exp(y[r0 + c]) * sdy;
      } else {
        // dx = y·(dy − Σ y·dy)
        let dot = 0;
        for (let c = 0; c < cols; c++) dot += y[r0 + c] * dy[r0 + c];
        for (let c = 0; c < cols; c++) dx[r0 + c] += y[r0 + c] * (dy[r0 + c] - dot);
      }
    }
  }

  softmaxCrossEntropy(rows: number, cols: number, logits: Storage, targets: Int32Array, ignoreIndex: number, probs: Storage, loss: Storage): void {
    const x = d(logits), p = d(probs), l = d(loss);
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t !== ignoreIndex && !(t >= 0 && t < cols)) {
        throw new BackendError(`softmaxCrossEntropy: target ${t} at row ${r} is outside [0, ${cols}) and is not the ignore index ${ignoreIndex}`);
      }
      const r0 = r * cols;
      let max = -Infinity;
      for (let c = 0; c < cols; c++) if (x[r0 + c] > max) max = x[r0 + c];
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(x[r0 + c] - max);
      const lse = max + Math.log(sum);
      for (let c = 0; c < cols; c++) p[r0 + c] = Math.exp(x[r0 + c] - lse);
      l[r] = t === ignoreIndex ? 0 : lse - x[r0 + t];
    }
  }

  softmaxCrossEntropyBackward(rows: number, cols: number, probs: Storage, targets: Int32Array, ignoreIndex: number, rowGrad: Storage, dlogits: Storage): void {
    const p = d(probs), g = d(rowGrad), dx = d(dlogits);
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t === ignoreIndex) continue;
      const r0 = r * cols;
      const gr = g[r];
      for (let c = 0; c < cols; c++) dx[r0 + c] += gr * p[r0 + c];
      dx[r0 + t] -= gr;
    }
  }

  gatherRows(cols: number, table: Storage, idx: Int32Array, out: Storage): void {
    const w = d(table), o = d(out);
    const rows = cols === 0 ? Infinity : w.length / cols;
    for (let i = 0; i < idx.length; i++) {
      const k = idx[i];
      if (!(k >= 0 && k < rows)) throw new BackendError(`gatherRows: index ${k} at position ${i} is outside [0, ${rows})`);
      o.set(w.subarray(k * cols, (k + 1) * cols), i * cols);
    }
  }

  scatterAddRows(cols: number, dout: Storage, idx: Int32Array, dtable: Storage): void {
    const g = d(dout), dw = d(dtable);
    for (let i = 0; i < idx.length; i++) {
      if (!(idx[i] >= 0 && (idx[i] + 1) * cols <= dw.length)) throw new BackendError(`scatterAddRows: index ${idx[i]} at position ${i} is outside [0, ${dw.length / cols})`);
      const w0 = idx[i] * cols, g0 = i * cols;
      for (let c = 0; c < cols; c++) dw[w0 + c] += g[g0 + c];
    }
  }

  maxOverTime(T: number, B: number, F: number, x: Storage, lengths: Int32Array | null, out: Storage): void {
    maxOverTimeLoop(T, B, F, d(x), 0, lengths, d(out), 0);
  }

  maxOverTimeBackward(T: number, B: number, F: number, x: Storage, lengths: Int32Array | null, out: Storage, dy: Storage, dx: Storage): void {
    maxOverTimeBackwardLoop(T, B, F, d(x), 0, lengths, d(out), 0, d(dy), 0, d(dx), 0);
  }

  rnnCellForward(s: CellStep, act: Activation, pre: Storage, gOff: number, hPrevS: Storage, hPrevOff: number, hS: Storage, hOff: number, yS: Storage | null, yOff: number, yStride: number): void {
    const g = d(pre), hPrev = d(hPrevS), h = d(hS), y = yS ? d(yS) : null;
    const { B, H } = s;
    for (let b = 0; b < B; b++) {
      const off = inactive(s, b);
      for (let j = 0; j < H; j++) {
        let v: number;
        if (off) v = hPrev[hPrevOff + b * H + j];
        else {
          const x = g[gOff + b * H + j];
          v = act === 'tanh' ? Math.tanh(x) : x > 0 ? x : 0;
        }
        h[hOff + b * H + j] = v;
        if (y) y[yOff + b * yStride + j] = off ? 0 : v;
      }
    }
  }

  rnnCellBackward(s: CellStep, act: Activation, hS: Storage, hOff: number, dhS: Storage, dhOff: number, dyS: Storage | null, dyOff: number, dyStride: number, dpreS: Storage, gOff: number, dhPrevS: Storage, dhPrevOff: number): void {
    const h = d(hS), dh = d(dhS), dy = dyS ? d(dyS) : null, dpre = d(dpreS), dhPrev = d(dhPrevS);
    const { B, H } = s;
    for (let b = 0; b < B; b++) {
      const off = inactive(s, b);
      for (let j = 0; j < H; j++) {
        const k = b * H + j;
        if (off) {
          dpre[gOff + k] = 0;
          dhPrev[dhPrevOff + k] += dh[dhOff + k];
        } else {
          const hv = h[hOff + k];
          const g = dh[dhOff + k] + (dy ? dy[dyOff + b * dyStride + j] : 0);
          // h = tanh(a): da = dh·(1 − h²); h = relu(a): da = dh·[h > 0]
          dpre[gOff + k] = act === 'tanh' ? g * (1 - hv * hv) : hv > 0 ? g : 0;
        }
      }
    }
  }

  lstmCellForward(s: CellStep, gS: Storage, gOff: number, hPrevS: Storage, hPrevOff: number, cPrevS: Storage, cPrevOff: number, cS: Storage, cOff: number, hS: Storage, hOff: number, yS: Storage | null, yOff: number, yStride: number): void {
    const g = d(gS), hPrev = d(hPrevS), cPrev = d(cPrevS), c = d(cS), h = d(hS), y = yS ? d(yS) : null;
    const { B, H } = s;
    const G = 4 * H;
    for (let b = 0; b < B; b++) {
      const g0 = gOff + b * G;
      const off = inactive(s, b);
      for (let j = 0; j < H; j++) {
        const k = b * H + j;
        // i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
        const i = sigmoid(g[g0 + j]);
        const f = sigmoid(g[g0 + H + j]);
        const gg = Math.tanh(g[g0 + 2 * H + j]);
        const o = sigmoid(g[g0 + 3 * H + j]);
        g[g0 + j] = i;
        g[g0 + H + j] = f;
        g[g0 + 2 * H + j] = gg;
        g[g0 + 3 * H + j] = o;
        if (off) {
          c[cOff + k] = cPrev[cPrevOff + k];
          h[hOff + k] = hPrev[hPrevOff + k];
          if (y) y[yOff + b * yStride + j] = 0;
          continue;
        }
        // c = f·cPrev + i·g;  h = o·tanh(c)
        const cv = f * cPrev[cPrevOff + k] + i * gg;
        c[cOff + k] = cv;
        const hv = o * Math.tanh(cv);
        h[hOff + k] = hv;
        if (y) y[yOff + b * yStride + j] = hv;
      }
    }
  }

  lstmCellBackward(s: CellStep, gS: Storage, gOff: number, cPrevS: Storage, cPrevOff: number, cS: Storage, cOff: number, dhS: Storage, dhOff: number, dyS: Storage | null, dyOff: number, dyStride: number, dcS: Storage, dcOff: number, dgS: Storage, dgOff: number, dcPrevS: Storage, dcPrevOff: number, dhPrevS: Storage, dhPrevOff: number): void {
    const g = d(gS), cPrev = d(cPrevS), c = d(cS), dh = d(dhS), dy = dyS ? d(dyS) : null, dc = d(dcS), dg = d(dgS), dcPrev = d(dcPrevS), dhPrev = d(dhPrevS);
    const { B, H } = s;
    const G = 4 * H;
    for (let b = 0; b < B; b++) {
      const g0 = gOff + b * G, dg0 = dgOff + b * G;
      const off = inactive(s, b);
      for (let j = 0; j < H; j++) {
        const k = b * H + j;
        if (off) {
          dg[dg0 + j] = 0; dg[dg0 + H + j] = 0; dg[dg0 + 2 * H + j] = 0; dg[dg0 + 3 * H + j] = 0;
          dcPrev[dcPrevOff + k] = dc[dcOff + k];
          dhPrev[dhPrevOff + k] += dh[dhOff + k];
          continue;
        }
        const i = g[g0 + j], f = g[g0 + H + j], gg = g[g0 + 2 * H + j], o = g[g0 + 3 * H + j];
        const tc = Math.tanh(c[cOff + k]);
        const dhv = dh[dhOff + k] + (dy ? dy[dyOff + b * dyStride + j] : 0);
        // h = o·tanh(c): do = dh·tanh(c); dc += dh·o·(1 − tanh²c)
        const dcv = dc[dcOff + k] + dhv * o * (1 - tc * tc);
        const dO = dhv * tc;
        // c = f·cPrev + i·g
        const dI = dcv * gg;
        const dF = dcv * cPrev[cPrevOff + k];
        const dG = dcv * i;
        dcPrev[dcPrevOff + k] = dcv * f;
        // through the activations
        dg[dg0 + j] = dI * i * (1 - i);
        dg[dg0 + H + j] = dF * f * (1 - f);
        dg[dg0 + 2 * H + j] = dG * (1 - gg * gg);
        dg[dg0 + 3 * H + j] = dO * o * (1 - o);
      }
    }
  }

  gruCellForward(s: CellStep, gxS: Storage, gxOff: number, ghS: Storage, ghOff: number, hPrevS: Storage, hPrevOff: number, hS: Storage, hOff: number, yS: Storage | null, yOff: number, yStride: number): void {
    const gx = d(gxS), gh = d(ghS), hPrev = d(hPrevS), h = d(hS), y = yS ? d(yS) : null;
    const { B, H } = s;
    const G = 3 * H;
    for (let b = 0; b < B; b++) {
      const x0 = gxOff + b * G, h0 = ghOff + b * G;
      const off = inactive(s, b);
      for (let j = 0; j < H; j++) {
        const k = b * H + j;
        // r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r·gh_n)
        const r = sigmoid(gx[x0 + j] + gh[h0 + j]);
        const z = sigmoid(gx[x0 + H + j] + gh[h0 + H + j]);
        const n = Math.tanh(gx[x0 + 2 * H + j] + r * gh[h0 + 2 * H + j]);
        gx[x0 + j] = r;
        gx[x0 + H + j] = z;
        gx[x0 + 2 * H + j] = n;
        const hp = hPrev[hPrevOff + k];
        if (off) {
          h[hOff + k] = hp;
          if (y) y[yOff + b * yStride + j] = 0;
          continue;
        }
        // h = (1 − z)·n + z·hPrev
        const hv = (1 - z) * n + z * hp;
        h[hOff + k] = hv;
        if (y) y[yOff + b * yStride + j] = hv;
      }
    }
  }

  gruCellBackward(s: CellStep, gS: Storage, gOff: number, ghS: Storage, ghOff: number, hPrevS: Storage, hPrevOff: number, dhS: Storage, dhOff: number, dyS: Storage | null, dyOff: number, dyStride: number, dgxS: Storage, dgxOff: number, dghS: Storage, dghOff: number, dhPrevS: Storage, dhPrevOff: number): void {
    const g = d(gS), gh = d(ghS), hPrev = d(hPrevS), dh = d(dhS), dy = dyS ? d(dyS) : null, dgx = d(dgxS), dgh = d(dghS), dhPrev = d(dhPrevS);
    const { B, H } = s;
    const G = 3 * H;
    for (let b = 0; b < B; b++) {
      const g0 = gOff + b * G, h0 = ghOff + b * G, x0 = dgxOff + b * G, y0 = dghOff + b * G;
      const off = inactive(s, b);
      for (let j = 0; j < H; j++) {
        const k = b * H + j;
        if (off) {
          dgx[x0 + j] = 0; dgx[x0 + H + j] = 0; dgx[x0 + 2 * H + j] = 0;
          dgh[y0 + j] = 0; dgh[y0 + H + j] = 0; dgh[y0 + 2 * H + j] = 0;
          dhPrev[dhPrevOff + k] += dh[dhOff + k];
          continue;
        }
        const dhv = dh[dhOff + k] + (dy ? dy[dyOff + b * dyStride + j] : 0);
        const r = g[g0 + j], z = g[g0 + H + j], n = g[g0 + 2 * H + j];
        const ghn = gh[h0 + 2 * H + j];
        // h = (1 − z)·n + z·hPrev
        const dn = dhv * (1 - z);
        const dz = dhv * (hPrev[hPrevOff + k] - n);
        dhPrev[dhPrevOff + k] += dhv * z;
        // n = tanh(a_n), a_n = gx_n + r·gh_n
        const dan = dn * (1 - n * n);
        const dr = dan * ghn;
        const dar = dr * r * (1 - r);
        const daz = dz * z * (1 - z);
        dgx[x0 + j] = dar; dgx[x0 + H + j] = daz; dgx[x0 + 2 * H + j] = dan;
        dgh[y0 + j] = dar; dgh[y0 + H + j] = daz; dgh[y0 + 2 * H + j] = dan * r;
      }
    }
  }

  adamUpdate(n: number, ps: Storage, gs: Storage, ms: Storage, vs: Storage, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, step: number): void {
    const p = d(ps), g = d(gs), m = d(ms), v = d(vs);
    const bc1 = 1 - Math.pow(beta1, step);
    const bc2 = 1 - Math.pow(beta2, step);
    const stepSize = lr / bc1;
    const bc2Sqrt = Math.sqrt(bc2);
    const decay = decoupled ? 1 - lr * weightDecay : 1;
    for (let i = 0; i < n; i++) {
      let gi = g[i];
      if (weightDecay !== 0) {
        if (decoupled) p[i] *= decay;
        else gi += weightDecay * p[i];
      }
      m[i] = beta1 * m[i] + (1 - beta1) * gi;
      v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
      p[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
    }
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add': return (a, b) => a + b;
    case 'sub': return (a, b) => a - b;
    case 'mul': return (a, b) => a * b;
    case 'div': return (a, b) => a / b;
    default: throw new BackendError(`js backend: unknown binary op '${String(op)}'`);
  }
}
