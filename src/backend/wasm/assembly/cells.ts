/**
 * Fused recurrent cell kernels, one time step of B rows (interface.ts has the exact contracts).
 *
 * Pointers are byte addresses of the first element of each block; `y`/`dy` are 0 when absent and
 * are strided (row b at y + b·yStride); `lens` is 0 or the address of B i32 lengths (masking: row b
 * is inactive when t >= lens[b]).
 *
 * float32 runs four lanes at a time with the approximations of vmath.ts; columns past the last
 * multiple of 4 and all of float64 run the scalar generic code, which computes in float64 with
 * Math.exp / Math.tanh exactly like the reference backend.
 */
import { elementPtr, inactive, sigmoid64 } from './common';
import { NR, sgemm_compute } from './gemm';
import { sigmoid4, tanh4 } from './vmath';

@inline function rowPtr<T>(base: usize, row: i32, stride: i32): usize {
  return base + ((<usize>row * <usize>stride) << alignof<T>());
}
@inline function ld<T>(p: usize, i: i32): f64 {
  return <f64>load<T>(elementPtr<T>(p, i));
}
@inline function st<T>(p: usize, i: i32, v: f64): void {
  store<T>(elementPtr<T>(p, i), <T>v);
}

// ---- vanilla RNN --------------------------------------------------------------------------------------

function rnnFwdRow<T>(H: i32, j0: i32, j1: i32, off: bool, relu: bool, pre: usize, hp: usize, h: usize, y: usize): void {
  for (let j = j0; j < j1; j++) {
    let v: f64;
    if (off) v = ld<T>(hp, j);
    else {
      const x = ld<T>(pre, j);
      v = relu ? (x > 0 ? x : 0) : Math.tanh(x);
    }
    st<T>(h, j, v);
    if (y) st<T>(y, j, off ? 0 : v);
  }
}

function rnnBwdRow<T>(H: i32, j0: i32, j1: i32, off: bool, relu: bool, h: usize, dh: usize, dy: usize, dpre: usize, dhPrev: usize): void {
  for (let j = j0; j < j1; j++) {
    if (off) {
      st<T>(dpre, j, 0);
      st<T>(dhPrev, j, ld<T>(dhPrev, j) + ld<T>(dh, j));
    } else {
      const hv = ld<T>(h, j);
      const g = ld<T>(dh, j) + (dy ? ld<T>(dy, j) : 0);
      st<T>(dpre, j, relu ? (hv > 0 ? g : 0) : g * (1 - hv * hv));
    }
  }
}

function rnnFwdG<T>(B: i32, H: i32, t: i32, lens: usize, relu: bool, pre: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  for (let b = 0; b < B; b++) {
    rnnFwdRow<T>(H, 0, H, inactive(lens, b, t), relu, rowPtr<T>(pre, b, H), rowPtr<T>(hPrev, b, H), rowPtr<T>(h, b, H), y ? rowPtr<T>(y, b, yStride) : 0);
  }
}
function rnnBwdG<T>(B: i32, H: i32, t: i32, lens: usize, relu: bool, h: usize, dh: usize, dy: usize, dyStride: i32, dpre: usize, dhPrev: usize): void {
  for (let b = 0; b < B; b++) {
    rnnBwdRow<T>(H, 0, H, inactive(lens, b, t), relu, rowPtr<T>(h, b, H), rowPtr<T>(dh, b, H), dy ? rowPtr<T>(dy, b, dyStride) : 0, rowPtr<T>(dpre, b, H), rowPtr<T>(dhPrev, b, H));
  }
}
export function rnnFwd_f64(B: i32, H: i32, t: i32, lens: usize, relu: bool, pre: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  rnnFwdG<f64>(B, H, t, lens, relu, pre, hPrev, h, y, yStride);
}
export function rnnBwd_f64(B: i32, H: i32, t: i32, lens: usize, relu: bool, h: usize, dh: usize, dy: usize, dyStride: i32, dpre: usize, dhPrev: usize): void {
  rnnBwdG<f64>(B, H, t, lens, relu, h, dh, dy, dyStride, dpre, dhPrev);
}

function rnnFwdUnits(B: i32, H: i32, t: i32, lens: usize, j0: i32, j1: i32, relu: bool, pre: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  const zero = f32x4.splat(0);
  for (let b = 0; b < B; b++) {
    const off = inactive(lens, b, t);
    const pr = rowPtr<f32>(pre, b, H), hp = rowPtr<f32>(hPrev, b, H), hr = rowPtr<f32>(h, b, H);
    const yr = y ? rowPtr<f32>(y, b, yStride) : 0;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const o = <usize>j << 2;
      let v: v128;
      if (off) v = v128.load(hp + o);
      else {
        const x = v128.load(pr + o);
        v = relu ? v128.and(x, f32x4.gt(x, zero)) : tanh4(x);
      }
      v128.store(hr + o, v);
      if (yr) v128.store(yr + o, off ? zero : v);
    }
    if (j < j1) rnnFwdRow<f32>(H, j, j1, off, relu, pr, hp, hr, yr);
  }
}
export function rnnFwd_f32(B: i32, H: i32, t: i32, lens: usize, relu: bool, pre: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  rnnFwdUnits(B, H, t, lens, 0, H, relu, pre, hPrev, h, y, yStride);
}

function rnnBwdUnits(B: i32, H: i32, t: i32, lens: usize, j0: i32, j1: i32, relu: bool, h: usize, dh: usize, dy: usize, dyStride: i32, dpre: usize, dhPrev: usize): void {
  const zero = f32x4.splat(0), one = f32x4.splat(1);
  for (let b = 0; b < B; b++) {
    const off = inactive(lens, b, t);
    const hr = rowPtr<f32>(h, b, H), dhr = rowPtr<f32>(dh, b, H), dpr = rowPtr<f32>(dpre, b, H), dhp = rowPtr<f32>(dhPrev, b, H);
    const dyr = dy ? rowPtr<f32>(dy, b, dyStride) : 0;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const o = <usize>j << 2;
      if (off) {
        v128.store(dpr + o, zero);
        v128.store(dhp + o, f32x4.add(v128.load(dhp + o), v128.load(dhr + o)));
      } else {
        const hv = v128.load(hr + o);
        let g = v128.load(dhr + o);
        if (dyr) g = f32x4.add(g, v128.load(dyr + o));
        const d = relu ? v128.and(g, f32x4.gt(hv, zero)) : f32x4.mul(g, f32x4.sub(one, f32x4.mul(hv, hv)));
        v128.store(dpr + o, d);
      }
    }
    if (j < j1) rnnBwdRow<f32>(H, j, j1, off, relu, hr, dhr, dyr, dpr, dhp);
  }
}
export function rnnBwd_f32(B: i32, H: i32, t: i32, lens: usize, relu: bool, h: usize, dh: usize, dy: usize, dyStride: i32, dpre: usize, dhPrev: usize): void {
  rnnBwdUnits(B, H, t, lens, 0, H, relu, h, dh, dy, dyStride, dpre, dhPrev);
}

// ---- LSTM ---------------------------------------------------------------------------------------------

function lstmFwdRow<T>(H: i32, j0: i32, j1: i32, off: bool, g: usize, hp: usize, cp: usize, c: usize, h: usize, y: usize): void {
  for (let j = j0; j < j1; j++) {
    const i = sigmoid64(ld<T>(g, j));
    const f = sigmoid64(ld<T>(g, H + j));
    const gg = Math.tanh(ld<T>(g, 2 * H + j));
    const o = sigmoid64(ld<T>(g, 3 * H + j));
    st<T>(g, j, i);
    st<T>(g, H + j, f);
    st<T>(g, 2 * H + j, gg);
    st<T>(g, 3 * H + j, o);
    if (off) {
      st<T>(c, j, ld<T>(cp, j));
      st<T>(h, j, ld<T>(hp, j));
      if (y) st<T>(y, j, 0);
      continue;
    }
    const cv = f * ld<T>(cp, j) + i * gg;
    st<T>(c, j, cv);
    const hv = o * Math.tanh(cv);
    st<T>(h, j, hv);
    if (y) st<T>(y, j, hv);
  }
}

function lstmBwdRow<T>(H: i32, j0: i32, j1: i32, off: bool, g: usize, cp: usize, c: usize, dh: usize, dy: usize, dc: usize, dg: usize, dcp: usize, dhp: usize): void {
  for (let j = j0; j < j1; j++) {
    if (off) {
      st<T>(dg, j, 0); st<T>(dg, H + j, 0); st<T>(dg, 2 * H + j, 0); st<T>(dg, 3 * H + j, 0);
      st<T>(dcp, j, ld<T>(dc, j));
      st<T>(dhp, j, ld<T>(dhp, j) + ld<T>(dh, j));
      continue;
    }
    const i = ld<T>(g, j), f = ld<T>(g, H + j), gg = ld<T>(g, 2 * H + j), o = ld<T>(g, 3 * H + j);
    const tc = Math.tanh(ld<T>(c, j));
    const dhv = ld<T>(dh, j) + (dy ? ld<T>(dy, j) : 0);
    const dcv = ld<T>(dc, j) + dhv * o * (1 - tc * tc);
    const dO = dhv * tc;
    const dI = dcv * gg;
    const dF = dcv * ld<T>(cp, j);
    const dG = dcv * i;
    st<T>(dcp, j, dcv * f);
    st<T>(dg, j, dI * i * (1 - i));
    st<T>(dg, H + j, dF * f * (1 - f));
    st<T>(dg, 2 * H + j, dG * (1 - gg * gg));
    st<T>(dg, 3 * H + j, dO * o * (1 - o));
  }
}

export function lstmFwd_f64(B: i32, H: i32, t: i32, lens: usize, g: usize, hPrev: usize, cPrev: usize, c: usize, h: usize, y: usize, yStride: i32): void {
  for (let b = 0; b < B; b++) {
    lstmFwdRow<f64>(H, 0, H, inactive(lens, b, t), rowPtr<f64>(g, b, 4 * H), rowPtr<f64>(hPrev, b, H), rowPtr<f64>(cPrev, b, H), rowPtr<f64>(c, b, H), rowPtr<f64>(h, b, H), y ? rowPtr<f64>(y, b, yStride) : 0);
  }
}
export function lstmBwd_f64(B: i32, H: i32, t: i32, lens: usize, g: usize, cPrev: usize, c: usize, dh: usize, dy: usize, dyStride: i32, dc: usize, dg: usize, dcPrev: usize, dhPrev: usize): void {
  for (let b = 0; b < B; b++) {
    lstmBwdRow<f64>(H, 0, H, inactive(lens, b, t), rowPtr<f64>(g, b, 4 * H), rowPtr<f64>(cPrev, b, H), rowPtr<f64>(c, b, H), rowPtr<f64>(dh, b, H), dy ? rowPtr<f64>(dy, b, dyStride) : 0, rowPtr<f64>(dc, b, H), rowPtr<f64>(dg, b, 4 * H), rowPtr<f64>(dcPrev, b, H), rowPtr<f64>(dhPrev, b, H));
  }
}

function lstmFwdUnits(B: i32, H: i32, t: i32, lens: usize, j0: i32, j1: i32, g: usize, hPrev: usize, cPrev: usize, c: usize, h: usize, y: usize, yStride: i32): void {
  const zero = f32x4.splat(0);
  const H4 = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const off = inactive(lens, b, t);
    const gr = rowPtr<f32>(g, b, 4 * H), hp = rowPtr<f32>(hPrev, b, H), cp = rowPtr<f32>(cPrev, b, H);
    const cr = rowPtr<f32>(c, b, H), hr = rowPtr<f32>(h, b, H);
    const yr = y ? rowPtr<f32>(y, b, yStride) : 0;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const o = <usize>j << 2;
      const gi = gr + o, gf = gi + H4, gg = gf + H4, go = gg + H4;
      const iv = sigmoid4(v128.load(gi));
      const fv = sigmoid4(v128.load(gf));
      const gv = tanh4(v128.load(gg));
      const ov = sigmoid4(v128.load(go));
      v128.store(gi, iv);
      v128.store(gf, fv);
      v128.store(gg, gv);
      v128.store(go, ov);
      if (off) {
        v128.store(cr + o, v128.load(cp + o));
        v128.store(hr + o, v128.load(hp + o));
        if (yr) v128.store(yr + o, zero);
      } else {
        const cv = f32x4.add(f32x4.mul(fv, v128.load(cp + o)), f32x4.mul(iv, gv));
        v128.store(cr + o, cv);
        const hv = f32x4.mul(ov, tanh4(cv));
        v128.store(hr + o, hv);
        if (yr) v128.store(yr + o, hv);
      }
    }
    if (j < j1) lstmFwdRow<f32>(H, j, j1, off, gr, hp, cp, cr, hr, yr);
  }
}
export function lstmFwd_f32(B: i32, H: i32, t: i32, lens: usize, g: usize, hPrev: usize, cPrev: usize, c: usize, h: usize, y: usize, yStride: i32): void {
  lstmFwdUnits(B, H, t, lens, 0, H, g, hPrev, cPrev, c, h, y, yStride);
}

function lstmBwdUnits(B: i32, H: i32, t: i32, lens: usize, j0: i32, j1: i32, g: usize, cPrev: usize, c: usize, dh: usize, dy: usize, dyStride: i32, dc: usize, dg: usize, dcPrev: usize, dhPrev: usize): void {
  const zero = f32x4.splat(0), one = f32x4.splat(1);
  const H4 = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const off = inactive(lens, b, t);
    const gr = rowPtr<f32>(g, b, 4 * H), cp = rowPtr<f32>(cPrev, b, H), cr = rowPtr<f32>(c, b, H);
    const dhr = rowPtr<f32>(dh, b, H), dcr = rowPtr<f32>(dc, b, H), dgr = rowPtr<f32>(dg, b, 4 * H);
    const dcp = rowPtr<f32>(dcPrev, b, H), dhp = rowPtr<f32>(dhPrev, b, H);
    const dyr = dy ? rowPtr<f32>(dy, b, dyStride) : 0;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const o = <usize>j << 2;
      const di = dgr + o, df = di + H4, dgg = df + H4, dO = dgg + H4;
      if (off) {
        v128.store(di, zero); v128.store(df, zero); v128.store(dgg, zero); v128.store(dO, zero);
        v128.store(dcp + o, v128.load(dcr + o));
        v128.store(dhp + o, f32x4.add(v128.load(dhp + o), v128.load(dhr + o)));
        continue;
      }
      const gi = gr + o;
      const iv = v128.load(gi), fv = v128.load(gi + H4), gv = v128.load(gi + 2 * H4), ov = v128.load(gi + 3 * H4);
      const tc = tanh4(v128.load(cr + o));
      let dhv = v128.load(dhr + o);
      if (dyr) dhv = f32x4.add(dhv, v128.load(dyr + o));
      const dcv = f32x4.add(v128.load(dcr + o), f32x4.mul(f32x4.mul(dhv, ov), f32x4.sub(one, f32x4.mul(tc, tc))));
      const dOv = f32x4.mul(dhv, tc);
      const dIv = f32x4.mul(dcv, gv);
      const dFv = f32x4.mul(dcv, v128.load(cp + o));
      const dGv = f32x4.mul(dcv, iv);
      v128.store(dcp + o, f32x4.mul(dcv, fv));
      v128.store(di, f32x4.mul(f32x4.mul(dIv, iv), f32x4.sub(one, iv)));
      v128.store(df, f32x4.mul(f32x4.mul(dFv, fv), f32x4.sub(one, fv)));
      v128.store(dgg, f32x4.mul(dGv, f32x4.sub(one, f32x4.mul(gv, gv))));
      v128.store(dO, f32x4.mul(f32x4.mul(dOv, ov), f32x4.sub(one, ov)));
    }
    if (j < j1) lstmBwdRow<f32>(H, j, j1, off, gr, cp, cr, dhr, dyr, dcr, dgr, dcp, dhp);
  }
}
export function lstmBwd_f32(B: i32, H: i32, t: i32, lens: usize, g: usize, cPrev: usize, c: usize, dh: usize, dy: usize, dyStride: i32, dc: usize, dg: usize, dcPrev: usize, dhPrev: usize): void {
  lstmBwdUnits(B, H, t, lens, 0, H, g, cPrev, c, dh, dy, dyStride, dc, dg, dcPrev, dhPrev);
}

// ---- GRU ----------------------------------------------------------------------------------------------

function gruFwdRow<T>(H: i32, j0: i32, j1: i32, off: bool, gx: usize, gh: usize, hp: usize, h: usize, y: usize): void {
  for (let j = j0; j < j1; j++) {
    const r = sigmoid64(ld<T>(gx, j) + ld<T>(gh, j));
    const z = sigmoid64(ld<T>(gx, H + j) + ld<T>(gh, H + j));
    const n = Math.tanh(ld<T>(gx, 2 * H + j) + r * ld<T>(gh, 2 * H + j));
    st<T>(gx, j, r);
    st<T>(gx, H + j, z);
    st<T>(gx, 2 * H + j, n);
    const hpv = ld<T>(hp, j);
    if (off) {
      st<T>(h, j, hpv);
      if (y) st<T>(y, j, 0);
      continue;
    }
    const hv = (1 - z) * n + z * hpv;
    st<T>(h, j, hv);
    if (y) st<T>(y, j, hv);
  }
}

function gruBwdRow<T>(H: i32, j0: i32, j1: i32, off: bool, g: usize, gh: usize, hp: usize, dh: usize, dy: usize, dgx: usize, dgh: usize, dhp: usize): void {
  for (let j = j0; j < j1; j++) {
    if (off) {
      st<T>(dgx, j, 0); st<T>(dgx, H + j, 0); st<T>(dgx, 2 * H + j, 0);
      st<T>(dgh, j, 0); st<T>(dgh, H + j, 0); st<T>(dgh, 2 * H + j, 0);
      st<T>(dhp, j, ld<T>(dhp, j) + ld<T>(dh, j));
      continue;
    }
    const dhv = ld<T>(dh, j) + (dy ? ld<T>(dy, j) : 0);
    const r = ld<T>(g, j), z = ld<T>(g, H + j), n = ld<T>(g, 2 * H + j);
    const ghn = ld<T>(gh, 2 * H + j);
    const dn = dhv * (1 - z);
    const dz = dhv * (ld<T>(hp, j) - n);
    st<T>(dhp, j, ld<T>(dhp, j) + dhv * z);
    const dan = dn * (1 - n * n);
    const dr = dan * ghn;
    const dar = dr * r * (1 - r);
    const daz = dz * z * (1 - z);
    st<T>(dgx, j, dar); st<T>(dgx, H + j, daz); st<T>(dgx, 2 * H + j, dan);
    st<T>(dgh, j, dar); st<T>(dgh, H + j, daz); st<T>(dgh, 2 * H + j, dan * r);
  }
}

export function gruFwd_f64(B: i32, H: i32, t: i32, lens: usize, gx: usize, gh: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  for (let b = 0; b < B; b++) {
    gruFwdRow<f64>(H, 0, H, inactive(lens, b, t), rowPtr<f64>(gx, b, 3 * H), rowPtr<f64>(gh, b, 3 * H), rowPtr<f64>(hPrev, b, H), rowPtr<f64>(h, b, H), y ? rowPtr<f64>(y, b, yStride) : 0);
  }
}
export function gruBwd_f64(B: i32, H: i32, t: i32, lens: usize, g: usize, gh: usize, hPrev: usize, dh: usize, dy: usize, dyStride: i32, dgx: usize, dgh: usize, dhPrev: usize): void {
  for (let b = 0; b < B; b++) {
    gruBwdRow<f64>(H, 0, H, inactive(lens, b, t), rowPtr<f64>(g, b, 3 * H), rowPtr<f64>(gh, b, 3 * H), rowPtr<f64>(hPrev, b, H), rowPtr<f64>(dh, b, H), dy ? rowPtr<f64>(dy, b, dyStride) : 0, rowPtr<f64>(dgx, b, 3 * H), rowPtr<f64>(dgh, b, 3 * H), rowPtr<f64>(dhPrev, b, H));
  }
}

function gruFwdUnits(B: i32, H: i32, t: i32, lens: usize, j0: i32, j1: i32, gx: usize, gh: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  const zero = f32x4.splat(0), one = f32x4.splat(1);
  const H4 = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const off = inactive(lens, b, t);
    const xr = rowPtr<f32>(gx, b, 3 * H), hr3 = rowPtr<f32>(gh, b, 3 * H), hp = rowPtr<f32>(hPrev, b, H), hr = rowPtr<f32>(h, b, H);
    const yr = y ? rowPtr<f32>(y, b, yStride) : 0;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const o = <usize>j << 2;
      const xo = xr + o, ho = hr3 + o;
      const r = sigmoid4(f32x4.add(v128.load(xo), v128.load(ho)));
      const z = sigmoid4(f32x4.add(v128.load(xo + H4), v128.load(ho + H4)));
      const n = tanh4(f32x4.add(v128.load(xo + 2 * H4), f32x4.mul(r, v128.load(ho + 2 * H4))));
      v128.store(xo, r);
      v128.store(xo + H4, z);
      v128.store(xo + 2 * H4, n);
      const hpv = v128.load(hp + o);
      if (off) {
        v128.store(hr + o, hpv);
        if (yr) v128.store(yr + o, zero);
      } else {
        const hv = f32x4.add(f32x4.mul(f32x4.sub(one, z), n), f32x4.mul(z, hpv));
        v128.store(hr + o, hv);
        if (yr) v128.store(yr + o, hv);
      }
    }
    if (j < j1) gruFwdRow<f32>(H, j, j1, off, xr, hr3, hp, hr, yr);
  }
}
export function gruFwd_f32(B: i32, H: i32, t: i32, lens: usize, gx: usize, gh: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  gruFwdUnits(B, H, t, lens, 0, H, gx, gh, hPrev, h, y, yStride);
}

function gruBwdUnits(B: i32, H: i32, t: i32, lens: usize, j0: i32, j1: i32, g: usize, gh: usize, hPrev: usize, dh: usize, dy: usize, dyStride: i32, dgx: usize, dgh: usize, dhPrev: usize): void {
  const zero = f32x4.splat(0), one = f32x4.splat(1);
  const H4 = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const off = inactive(lens, b, t);
    const gr = rowPtr<f32>(g, b, 3 * H), ghr = rowPtr<f32>(gh, b, 3 * H), hp = rowPtr<f32>(hPrev, b, H);
    const dhr = rowPtr<f32>(dh, b, H), dxr = rowPtr<f32>(dgx, b, 3 * H), dgr = rowPtr<f32>(dgh, b, 3 * H), dhp = rowPtr<f32>(dhPrev, b, H);
    const dyr = dy ? rowPtr<f32>(dy, b, dyStride) : 0;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const o = <usize>j << 2;
      if (off) {
        v128.store(dxr + o, zero); v128.store(dxr + o + H4, zero); v128.store(dxr + o + 2 * H4, zero);
        v128.store(dgr + o, zero); v128.store(dgr + o + H4, zero); v128.store(dgr + o + 2 * H4, zero);
        v128.store(dhp + o, f32x4.add(v128.load(dhp + o), v128.load(dhr + o)));
        continue;
      }
      let dhv = v128.load(dhr + o);
      if (dyr) dhv = f32x4.add(dhv, v128.load(dyr + o));
      const r = v128.load(gr + o), z = v128.load(gr + o + H4), n = v128.load(gr + o + 2 * H4);
      const ghn = v128.load(ghr + o + 2 * H4);
      const dn = f32x4.mul(dhv, f32x4.sub(one, z));
      const dz = f32x4.mul(dhv, f32x4.sub(v128.load(hp + o), n));
      v128.store(dhp + o, f32x4.add(v128.load(dhp + o), f32x4.mul(dhv, z)));
      const dan = f32x4.mul(dn, f32x4.sub(one, f32x4.mul(n, n)));
      const dr = f32x4.mul(dan, ghn);
      const dar = f32x4.mul(f32x4.mul(dr, r), f32x4.sub(one, r));
      const daz = f32x4.mul(f32x4.mul(dz, z), f32x4.sub(one, z));
      v128.store(dxr + o, dar); v128.store(dxr + o + H4, daz); v128.store(dxr + o + 2 * H4, dan);
      v128.store(dgr + o, dar); v128.store(dgr + o + H4, daz); v128.store(dgr + o + 2 * H4, f32x4.mul(dan, r));
    }
    if (j < j1) gruBwdRow<f32>(H, j, j1, off, gr, ghr, hp, dhr, dyr, dxr, dgr, dhp);
  }
}
export function gruBwd_f32(B: i32, H: i32, t: i32, lens: usize, g: usize, gh: usize, hPrev: usize, dh: usize, dy: usize, dyStride: i32, dgx: usize, dgh: usize, dhPrev: usize): void {
  gruBwdUnits(B, H, t, lens, 0, H, g, gh, hPrev, dh, dy, dyStride, dgx, dgh, dhPrev);
}

// ---- fused steps (float32): the recurrent GEMM and the cell for the hidden units [j0, j1) ------------
//
// A threaded backend splits one time step by hidden units: the chunk for units [j0, j1) computes
// the columns of every gate that belong to those units (one GEMM slice per gate over W_hh's packed
// panels) and then runs the cell on those units. Nothing that another chunk of the same step
// writes is read, so a whole step is one job with one barrier after it. Backward runs, per chunk,
// the recurrent GEMM of the step processed before (dh_t[:, j0:j1] += dG_{t+1} · W_hh[:, j0:j1])
// and then the cell of step t on the same units — again one job per step.
// Requires j0, j1 and H multiples of NR (8), so every gate block starts on a panel. The sums are
// the ones sgemm_compute makes for any split, so the results equal GEMM-then-cell bit for bit.

/**
 * gates[:, q·H + j0 : q·H + j1] = beta·gates + hPrev · W_hhᵀ for each gate q < G (G: the gate
 * count; gateRows = G·H, the rows of W_hh and the width of gates; Wp: W_hhᵀ packed, N = G·H).
 */
function gateSlices(G: i32, B: i32, H: i32, j0: i32, j1: i32, hPrev: usize, Wp: usize, beta: f32, gates: usize, scratch: usize): void {
  const gateRows = G * H;
  for (let q = 0; q < G; q++) {
    sgemm_compute(false, 0, B, (q * H + j0) / NR, (q * H + j1) / NR, H, gateRows, 1, hPrev, H, Wp, beta, gates, gateRows, scratch);
  }
}

/** dh[:, j0:j1] += dgNext · W_hh[:, j0:j1] (Wp: W_hh packed, K = gateRows = G·H, N = H) when dgNext != 0; then dhPrev[:, j0:j1] = 0. */
function recurrentGrad(G: i32, B: i32, H: i32, j0: i32, j1: i32, dgNext: usize, Wp: usize, dh: usize, dhPrev: usize, scratch: usize): void {
  const gateRows = G * H;
  if (dgNext) sgemm_compute(false, 0, B, j0 / NR, j1 / NR, gateRows, H, 1, dgNext, gateRows, Wp, 1, dh, H, scratch);
  for (let b = 0; b < B; b++) memory.fill(rowPtr<f32>(dhPrev, b, H) + (<usize>j0 << 2), 0, <usize>(j1 - j0) << 2);
}

export function rnnStepFwd_f32(j0: i32, j1: i32, scratch: usize, B: i32, H: i32, t: i32, lens: usize, relu: bool, Wp: usize, pre: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  gateSlices(1, B, H, j0, j1, hPrev, Wp, 1, pre, scratch);
  rnnFwdUnits(B, H, t, lens, j0, j1, relu, pre, hPrev, h, y, yStride);
}

export function lstmStepFwd_f32(j0: i32, j1: i32, scratch: usize, B: i32, H: i32, t: i32, lens: usize, Wp: usize, g: usize, hPrev: usize, cPrev: usize, c: usize, h: usize, y: usize, yStride: i32): void {
  gateSlices(4, B, H, j0, j1, hPrev, Wp, 1, g, scratch);
  lstmFwdUnits(B, H, t, lens, j0, j1, g, hPrev, cPrev, c, h, y, yStride);
}

/** GRU: gh = hPrev · W_hhᵀ + b_hh (bhh = 0: no bias) for the units' columns, then the cell. */
export function gruStepFwd_f32(j0: i32, j1: i32, scratch: usize, B: i32, H: i32, t: i32, lens: usize, Wp: usize, bhh: usize, gx: usize, gh: usize, hPrev: usize, h: usize, y: usize, yStride: i32): void {
  gateSlices(3, B, H, j0, j1, hPrev, Wp, 0, gh, scratch);
  if (bhh) {
    for (let b = 0; b < B; b++) {
      const row = rowPtr<f32>(gh, b, 3 * H);
      for (let q = 0; q < 3; q++) {
        for (let j = q * H + j0; j < q * H + j1; j += 4) {
          const o = <usize>j << 2;
          v128.store(row + o, f32x4.add(v128.load(row + o), v128.load(bhh + o)));
        }
      }
    }
  }
  gruFwdUnits(B, H, t, lens, j0, j1, gx, gh, hPrev, h, y, yStride);
}

export function rnnStepBwd_f32(j0: i32, j1: i32, scratch: usize, B: i32, H: i32, t: i32, lens: usize, relu: bool, Wp: usize, dgNext: usize, h: usize, dh: usize, dy: usize, dyStride: i32, dpre: usize, dhPrev: usize): void {
  recurrentGrad(1, B, H, j0, j1, dgNext, Wp, dh, dhPrev, scratch);
  rnnBwdUnits(B, H, t, lens, j0, j1, relu, h, dh, dy, dyStride, dpre, dhPrev);
}

export function lstmStepBwd_f32(j0: i32, j1: i32, scratch: usize, B: i32, H: i32, t: i32, lens: usize, Wp: usize, dgNext: usize, g: usize, cPrev: usize, c: usize, dh: usize, dy: usize, dyStride: i32, dc: usize, dg: usize, dcPrev: usize, dhPrev: usize): void {
  recurrentGrad(4, B, H, j0, j1, dgNext, Wp, dh, dhPrev, scratch);
  lstmBwdUnits(B, H, t, lens, j0, j1, g, cPrev, c, dh, dy, dyStride, dc, dg, dcPrev, dhPrev);
}

export function gruStepBwd_f32(j0: i32, j1: i32, scratch: usize, B: i32, H: i32, t: i32, lens: usize, Wp: usize, dgNext: usize, g: usize, gh: usize, hPrev: usize, dh: usize, dy: usize, dyStride: i32, dgx: usize, dgh: usize, dhPrev: usize): void {
  recurrentGrad(3, B, H, j0, j1, dgNext, Wp, dh, dhPrev, scratch);
  gruBwdUnits(B, H, t, lens, j0, j1, g, gh, hPrev, dh, dy, dyStride, dgx, dgh, dhPrev);
}
