/**
 * The backend's memory: one WebAssembly.Memory (shared when threads are possible) and a JS-side
 * allocator that hands out 64-byte-aligned byte ranges of it.
 *
 * Allocation: sizes are rounded up to a size class (multiples of 64 bytes up to 256, then four
 * classes per power of two, so at most 25% is wasted); each class has a free list (a stack of block
 * addresses, so the block freed last is reused first while it is still in cache). A miss takes a new
 * block from the top of the heap, growing the memory when needed (by at least a quarter of its size,
 * to keep the number of grows small). A freed block goes back to its class's list unsplit and
 * unmerged (a block that ends at the top of the heap lowers the top instead). Training loops that
 * allocate the same sizes every step therefore run on free-list hits from their second step.
 *
 * Coalescing: loops whose sizes change from step to step (variable-length batches: every sequence
 * length makes its own classes) would strand most of the heap in the lists of classes no longer
 * asked for, and grow until the memory limit (a 10-epoch seq2seq run died so: 227 MiB live, 3.9 GiB
 * free in other classes). So before the memory would grow while at least as many bytes sit free as
 * are live, every free block is merged with its free neighbours into address-ordered runs (a run
 * that reaches the top lowers it); a class miss is then served best-fit from a run before the top.
 * That is a sort of the free blocks, at most once per such grow, and keeps the memory within about
 * twice the live bytes.
 *
 * Zeroing: memory the heap has never handed out is zero (wasm memory starts zeroed); `cleanTop`
 * marks where that zero region begins, so only recycled bytes are cleared.
 *
 * Views: typed-array views of the whole memory are re-made after every grow (a grow detaches an
 * unshared buffer and leaves the old views of a shared one too short); nothing else holds them.
 */
export const ALIGN = 64;
const PAGE = 65536;

/** The size class of an n-byte request (n ≥ 1). */
export function sizeClass(n: number): number {
  if (n <= 256) return Math.ceil(n / ALIGN) * ALIGN;
  const e = Math.floor(Math.log2(n - 1)); // 2^e < n ≤ 2^(e+1)
  const step = Math.max(ALIGN, 2 ** (e - 2));
  return Math.ceil(n / step) * step;
}

export interface HeapStats {
  /** Bytes of the wasm memory. */
  memoryBytes: number;
  /** Bytes in blocks handed out and not yet freed (class sizes). */
  liveBytes: number;
  /** The most liveBytes since the heap was made or `resetPeak` was called. */
  peakLiveBytes: number;
  /** Number of blocks handed out and not yet freed. */
  liveBlocks: number;
  /** Bytes sitting in the free lists. */
  freeBytes: number;
  /** Top of the heap (bytes below it have been handed out at some point). */
  top: number;
  /** How many times the memory grew. */
  grows: number;
  /** How many full GCs the allocator forced to reclaim storage (see `collect`). */
  collections: number;
  /** How many times the free blocks were merged into runs (see Coalescing above). */
  coalesces: number;
}

export class Heap {
  readonly memory: WebAssembly.Memory;
  readonly maxPages: number;
  f32!: Float32Array;
  f64!: Float64Array;
  i32!: Int32Array;
  u8!: Uint8Array;
  private top: number;
  private cleanTop: number;
  private free = new Map<number, number[]>();
  /** Free runs made by `coalesce`, in address order. */
  private runs: { p: number; n: number }[] = [];
  private live = 0;
  private peakLive = 0;
  private liveBlocks = 0;
  private freeBytes = 0;
  private grows = 0;
  private collections = 0;
  private coalesces = 0;

  /** Zero n bytes at p (the kernel module's memory.fill). */
  private readonly zero: (p: number, n: number) => void;

  constructor(memory: WebAssembly.Memory, base: number, maxPages: number, zero: (p: number, n: number) => void) {
    this.memory = memory;
    this.zero = zero;
    this.maxPages = maxPages;
    this.top = Math.ceil(base / ALIGN) * ALIGN;
    this.cleanTop = this.top;
    this.refresh();
  }

  /** Re-make the views (after a grow). */
  refresh(): void {
    const buf = this.memory.buffer;
    this.f32 = new Float32Array(buf);
    this.f64 = new Float64Array(buf);
    this.i32 = new Int32Array(buf);
    this.u8 = new Uint8Array(buf);
  }

  /**
   * Optional reclamation hooks (see platform.ts WeakRegistry): `drain` runs before every allocation
   * (finalizers of storages the GC already collected give their blocks back first); `collect` (a
   * full GC, then drain) runs when the memory would otherwise grow, but only once at least
   * max(gcChurnBytes, the bytes live after the previous forced GC) were allocated since that GC.
   * (V8 clears weak references only in full GCs, a few to tens of milliseconds; this bounds them
   * to one per gcChurnBytes of allocation, e.g. one per few W1 training steps, and lets a working
   * set that really grows cost O(log size) of them.)
   */
  drain: (() => void) | undefined;
  collect: (() => void) | undefined;
  gcChurnBytes = 128 * 2 ** 20;
  private churn = 0;
  private liveAfterGc = 0;

  private take(size: number): number {
    const list = this.free.get(size);
    if (list === undefined || list.length === 0) return -1;
    this.freeBytes -= size;
    return list.pop()!;
  }

  /** Best fit among the runs, carved from the run's start. */
  private takeRun(size: number): number {
    let best: { p: number; n: number } | undefined;
    let at = -1;
    for (let i = 0; i < this.runs.length; i++) {
      const r = this.runs[i];
      if (r.n >= size && (best === undefined || r.n < best.n)) {
        best = r;
        at = i;
        if (r.n === size) break;
      }
    }
    if (best === undefined) return -1;
    const p = best.p;
    best.p += size;
    best.n -= size;
    if (best.n === 0) this.runs.splice(at, 1);
    this.freeBytes -= size;
    return p;
  }

  /** Merge every free block (class lists and runs) with its free neighbours. */
  private coalesce(): void {
    const blocks = this.runs;
    for (const [size, list] of this.free) for (const p of list) blocks.push({ p, n: size });
    this.free = new Map();
    blocks.sort((a, b) => a.p - b.p);
    const runs: { p: number; n: number }[] = [];
    for (const b of blocks) {
      const last = runs.at(-1);
      if (last !== undefined && last.p + last.n === b.p) last.n += b.n;
      else runs.push(b);
    }
    const last = runs.at(-1);
    if (last !== undefined && last.p + last.n === this.top) {
      this.top = last.p;
      this.freeBytes -= last.n;
      runs.pop();
    }
    this.runs = runs;
    this.coalesces++;
  }

  /** A block of at least `bytes` bytes; returns [address, class size]. Zero-filled when `zero`. */
  alloc(bytes: number, zero: boolean): [number, number] {
    const size = sizeClass(Math.max(bytes, 1));
    this.drain?.();
    let ptr = this.take(size);
    if (ptr < 0 && this.runs.length > 0) ptr = this.takeRun(size);
    if (ptr < 0 && this.top + size > this.u8.length && this.collect !== undefined && this.churn >= Math.max(this.gcChurnBytes, this.liveAfterGc)) {
      this.collect();
      this.collections++;
      this.churn = 0;
      this.liveAfterGc = this.live;
      ptr = this.take(size);
    }
    if (ptr < 0 && this.top + size > this.u8.length && this.freeBytes >= Math.max(size, this.live)) {
      this.coalesce();
      ptr = this.takeRun(size);
    }
    if (ptr >= 0) {
      if (zero) this.zero(ptr, bytes);
    } else {
      ptr = this.top;
      const end = ptr + size;
      if (end > this.u8.length) this.grow(end);
      this.top = end;
      if (zero && ptr < this.cleanTop) this.zero(ptr, Math.min(bytes, this.cleanTop - ptr));
      if (end > this.cleanTop) this.cleanTop = end;
    }
    this.churn += size;
    this.live += size;
    if (this.live > this.peakLive) this.peakLive = this.live;
    this.liveBlocks++;
    return [ptr, size];
  }

  /** Return a block (address and class size from `alloc`). */
  release(ptr: number, size: number): void {
    this.live -= size;
    this.liveBlocks--;
    if (ptr + size === this.top) {
      this.top = ptr;
      return;
    }
    let list = this.free.get(size);
    if (list === undefined) {
      list = [];
      this.free.set(size, list);
    }
    list.push(ptr);
    this.freeBytes += size;
  }

  private grow(end: number): void {
    const have = this.memory.buffer.byteLength / PAGE;
    const need = Math.ceil(end / PAGE);
    if (need > this.maxPages) {
      throw new RangeError(
        `wasm backend: out of memory: ${end} bytes needed, the limit is ${this.maxPages * PAGE} ` +
        `(${(this.live / 2 ** 20).toFixed(1)} MiB live, ${(this.freeBytes / 2 ** 20).toFixed(1)} MiB free in other size classes)`,
      );
    }
    const pages = Math.min(this.maxPages, Math.max(need, have + Math.ceil(have / 4)));
    this.memory.grow(pages - have);
    this.grows++;
    this.refresh();
  }

  /** Start a new peak from the bytes live now. */
  resetPeak(): void {
    this.peakLive = this.live;
  }

  stats(): HeapStats {
    return {
      memoryBytes: this.memory.buffer.byteLength,
      liveBytes: this.live,
      peakLiveBytes: this.peakLive,
      liveBlocks: this.liveBlocks,
      freeBytes: this.freeBytes,
      top: this.top,
      grows: this.grows,
      collections: this.collections,
      coalesces: this.coalesces,
    };
  }
}
