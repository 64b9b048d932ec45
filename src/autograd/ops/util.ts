/** Shared checks for ops: same backend, same dtype, shape broadcasting. */
import { Tensor, shapeStr, type Shape } from '../../tensor/tensor.ts';

export function sameBackendAndDType(op: string, ...ts: Tensor[]): void {
  const a = ts[0];
  for (const t of ts) {
    if (t.backend !== a.backend) throw new Error(`${op}: tensors are on different backends ('${a.backend.name}' and '${t.backend.name}')`);
    if (t.dtype !== a.dtype) throw new TypeError(`${op}: tensors have different dtypes (${a.dtype} and ${t.dtype})`);
  }
}

/** NumPy broadcasting: the output shape, or an error naming both shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new RangeError(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} cannot be broadcast together (axis ${i}: ${x} vs ${y})`);
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

export function padShape(shape: Shape, rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new RangeError(`${op}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

export function newLike(t: Tensor, shape: Shape = t.shape): Tensor {
  let n = 1;
  for (const s of shape) n *= s;
  return new Tensor(t.backend.alloc(n, t.dtype), shape);
}
