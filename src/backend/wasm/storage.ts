/**
 * Storage in wasm memory: allocation, release, and copies in and out.
 *
 * Storage is a byte range of the memory (see memory.ts for the allocator). A `WasmStorage` is
 * registered with a FinalizationRegistry; when the storage object is garbage-collected its bytes go
 * back to the allocator (and any packed copy of it is dropped). Users never free anything.
 * Engines run finalizers as separate tasks, i.e. only when the event loop turns, which a training
 * loop may never do. On Node 20 the registry therefore comes with synchronous reclamation
 * (platform-node.ts): collected storages are reclaimed before each allocation, and a full GC runs
 * before the memory would grow. Elsewhere (browsers, other Node versions) a loop that never yields
 * gets its memory back only when it does; the heap grows meanwhile (up to `maxMemoryMiB`).
 */
import { elementBytes, BackendError, type Data, type DType, type Storage } from '../interface.ts';
import type { WasmBackend } from './backend.ts';
import { type WasmContext, addressOf, firstIndex, markWritten } from './context.ts';

let nextStorageId = 1;

export class WasmStorage implements Storage {
  readonly backend: WasmBackend;
  readonly dtype: DType;
  readonly size: number;
  /** Byte address of element 0 in the backend's memory. */
  readonly ptr: number;
  /** Bumped by every kernel that writes this storage (keys the packed-operand cache). */
  version = 0;
  readonly id = nextStorageId++;
  /** What the finalizer gives back (null for the shared empty block); shared with `release`. */
  held: Held | null = null;
  /** Given back by `release`: any later use is an error. */
  released = false;

  constructor(backend: WasmBackend, dtype: DType, size: number, ptr: number) {
    this.backend = backend;
    this.dtype = dtype;
    this.size = size;
    this.ptr = ptr;
  }
}

/** What the finalizer needs to give a storage's bytes back (never the storage itself). */
export interface Held {
  ptr: number;
  bytes: number;
  id: number;
  /** Already given back by `release` (the finalizer then has nothing to do). */
  released: boolean;
}

/** A new storage of `size` elements (zeroed when `zero`), registered for reclamation. */
export function makeStorage(ctx: WasmContext, size: number, dtype: DType, zero: boolean): WasmStorage {
  if (dtype !== 'float32' && dtype !== 'float64') throw new BackendError(`wasm backend: unknown dtype '${String(dtype)}' (expected 'float32' or 'float64')`);
  if (!Number.isSafeInteger(size) || size < 0) throw new BackendError(`wasm backend: cannot allocate ${size} elements`);
  if (size === 0) return new WasmStorage(ctx.owner, dtype, 0, ctx.emptyPtr);
  const bytes = size * elementBytes(dtype);
  let ptr: number, sizeClassBytes: number;
  try {
    [ptr, sizeClassBytes] = ctx.heap.alloc(bytes, zero);
  } catch (e) {
    throw new BackendError((e as Error).message);
  }
  const s = new WasmStorage(ctx.owner, dtype, size, ptr);
  s.held = { ptr, bytes: sizeClassBytes, id: s.id, released: false };
  ctx.registry.register(s, s.held);
  return s;
}

/** Give a storage's block back now (Backend.release); it becomes unusable. */
export function releaseStorage(ctx: WasmContext, storage: Storage): void {
  const s = ctx.own(storage, 'release');
  s.released = true;
  const h = s.held;
  if (h === null) return;
  h.released = true;
  ctx.packs.drop(h.id);
  ctx.heap.release(h.ptr, h.bytes);
}

export function fromArray(ctx: WasmContext, data: ArrayLike<number>, dtype: DType): Storage {
  const s = makeStorage(ctx, data.length, dtype, false);
  if (s.size > 0) ctx.view(dtype).set(data, firstIndex(s));
  return s;
}

export function read(ctx: WasmContext, storage: Storage, offset: number, n: number): Data {
  const s = ctx.own(storage, 'read');
  ctx.span(s, offset, n, s.dtype, 'read');
  const i = firstIndex(s) + offset;
  return ctx.view(s.dtype).slice(i, i + n);
}

export function write(ctx: WasmContext, storage: Storage, data: ArrayLike<number>, offset: number): void {
  const s = ctx.own(storage, 'write');
  ctx.span(s, offset, data.length, s.dtype, 'write');
  if (data.length === 0) return;
  ctx.view(s.dtype).set(data, firstIndex(markWritten(s)) + offset);
}

export function copy(ctx: WasmContext, src: Storage, srcOff: number, dst: Storage, dstOff: number, n: number): void {
  const d = ctx.own(dst, 'copy dst');
  const s = ctx.span(src, srcOff, n, d.dtype, 'copy src');
  ctx.span(d, dstOff, n, d.dtype, 'copy dst');
  if (n === 0) return;
  ctx.kernels.copyBytes(addressOf(markWritten(d), dstOff), addressOf(s, srcOff), n * elementBytes(d.dtype));
}

export function fill(ctx: WasmContext, dst: Storage, value: number, offset: number, n: number): void {
  const d = ctx.own(dst, 'fill');
  ctx.span(d, offset, n, d.dtype, 'fill');
  if (n === 0) return;
  (d.dtype === 'float32' ? ctx.kernels.fill_f32 : ctx.kernels.fill_f64)(addressOf(markWritten(d), offset), n, value);
}
