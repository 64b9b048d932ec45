/// <reference types="@webgpu/types" />
/**
 * The WebGPU runtime under the backend: one device, one open command encoder that batches every
 * kernel of a step, a pipeline per (kernel, aliasing pattern), a pool of storage buffers, and the
 * asynchronous read-back.
 *
 * Ordering is the whole design. Every command — dispatch, buffer copy, clear — is recorded into the
 * one encoder in call order, so the GPU sees exactly the sequence the caller wrote, and a buffer
 * that goes back to the pool can be handed out again at once (its next user's commands come after
 * its last user's). Nothing is submitted until a read needs it, the uniform arena is full, or the
 * caller flushes: a training step is one submit. `queue.writeBuffer` would jump that order (it runs
 * before the not-yet-submitted encoder), so host data enters through fresh buffers mapped at
 * creation, and the uniform arena is written once per submit, just before it.
 */
import { BackendError } from '../interface.ts';
import type { WgslKernel } from './wgsl.ts';

// GPUBufferUsage / GPUMapMode values, spelled out: Node's `webgpu` package does not define the
// globals unless asked to, and these numbers are fixed by the specification.
const MAP_READ = 0x1, COPY_SRC = 0x4, COPY_DST = 0x8, UNIFORM = 0x40, STORAGE = 0x80;
const MAP_MODE_READ = 0x1;

/** Bytes of uniform parameters one dispatch may use (the minimum dynamic-offset alignment). */
export const PARAM_BYTES = 256;
/** Dispatches per submit before the uniform arena forces one. */
const ARENA_SLOTS = 2048;
/** Workgroups per grid dimension (the specification's minimum limit). */
const MAX_GROUPS = 65535;

/** A float32 array in GPU memory, as the backend's Storage holds it. */
export interface GpuArray {
  buffer: GPUBuffer;
  /** Bytes of the buffer (≥ 4·elements, rounded to the pool's size class). */
  bytes: number;
}

/** A dispatch's arguments: float32 arrays (possibly the same buffer twice), int32 arrays, parameters. */
export interface DispatchArgs {
  f32: readonly GPUBuffer[];
  i32?: readonly GPUBuffer[];
  /** The kernel's parameter words, in its declared order (floats already bit-cast). */
  params: Uint32Array;
  /** Workgroups to launch (split over x and y when above the per-dimension limit). */
  groups: number;
  /** Workgroups along y for 2-D kernels (then `groups` is the x count). */
  groupsY?: number;
}

function sizeClass(bytes: number): number {
  // powers of two up to 1 MiB, then whole MiB: reuse without wasting more than 1 MiB a buffer
  const b = Math.max(16, bytes);
  if (b <= 1 << 20) return 2 ** Math.ceil(Math.log2(b));
  return Math.ceil(b / (1 << 20)) * (1 << 20);
}

export class GpuRuntime {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arena: GPUBuffer;
  private readonly arenaHost = new Uint32Array((ARENA_SLOTS * PARAM_BYTES) / 4);
  private slots = 0;
  /** Buffers to destroy once the current batch is submitted (uploads of host data). */
  private transient: GPUBuffer[] = [];
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly free = new Map<number, GPUBuffer[]>();
  private liveBytes = 0;
  private peakBytes = 0;
  /** Dispatches recorded since the runtime started (for tests and profiles). */
  dispatches = 0;
  /** Batches submitted: a batch's transient buffers live until its submit (backend.ts keys uploads by it). */
  submits = 0;

  /** Errors the device reported since the last read (validation, out of memory), oldest first. */
  private errors: string[] = [];

  /**
   * @param entry the WebGPU entry object, only held: Node's `webgpu` package tears its instance down
   * (and the device with it) once that object is collected
   */
  constructor(readonly device: GPUDevice, private readonly entry: unknown) {
    // WebGPU reports a bad command on the device, not at the call: collect, and fail the next read
    device.addEventListener('uncapturederror', (ev) => {
      if (this.errors.length < 8) this.errors.push((ev as GPUUncapturedErrorEvent).error.message);
    });
    this.arena = device.createBuffer({ size: this.arenaHost.byteLength, usage: UNIFORM | COPY_DST });
  }

  // ---- memory ------------------------------------------------------------------------------------

  /** A storage buffer of at least `bytes`; from the pool when one of its size class is free. */
  acquire(bytes: number, zero: boolean): GpuArray {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    const reused = list?.pop();
    this.liveBytes += size;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    if (reused) {
      if (zero) this.clear(reused, 0, size);
      return { buffer: reused, bytes: size };
    }
    return { buffer: this.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST }), bytes: size };
  }

  /** Give a buffer back to the pool. Safe at once: later users' commands follow earlier ones. */
  releaseBuffer(a: GpuArray): void {
    this.liveBytes -= a.bytes;
    let list = this.free.get(a.bytes);
    if (!list) this.free.set(a.bytes, (list = []));
    list.push(a.buffer);
  }

  memoryUse(): { live: number; peak: number } {
    return { live: this.liveBytes, peak: this.peakBytes };
  }

  resetMemoryPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** A buffer holding `data` from the start, for reading by later commands (destroyed after the submit). */
  upload(data: ArrayBufferView, usage = STORAGE | COPY_SRC): GPUBuffer {
    const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
    const b = this.device.createBuffer({ size, usage, mappedAtCreation: true });
    new Uint8Array(b.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    b.unmap();
    this.transient.push(b);
    return b;
  }

  // ---- commands ----------------------------------------------------------------------------------

  private enc(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private endPass(): GPUCommandEncoder {
    const e = this.enc();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return e;
  }

  clear(b: GPUBuffer, byteOff: number, bytes: number): void {
    if (bytes > 0) this.endPass().clearBuffer(b, byteOff, bytes);
  }

  copy(src: GPUBuffer, srcByte: number, dst: GPUBuffer, dstByte: number, bytes: number): void {
    if (bytes === 0) return;
    const e = this.endPass();
    if (src !== dst) {
      e.copyBufferToBuffer(src, srcByte, dst, dstByte, bytes);
      return;
    }
    // a buffer cannot be both source and destination of one copy: go through a temporary
    const tmp = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: COPY_SRC | COPY_DST });
    e.copyBufferToBuffer(src, srcByte, tmp, 0, bytes);
    e.copyBufferToBuffer(tmp, 0, dst, dstByte, bytes);
    this.transient.push(tmp);
  }

  private pipeline(k: WgslKernel, aliases: readonly number[], nI32: number): GPUComputePipeline {
    const key = `${k.name}/${aliases.join(',')}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ label: key, code: k.source(aliases, nI32) });
      p = this.device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Record one dispatch of kernel k. */
  dispatch(k: WgslKernel, a: DispatchArgs): void {
    if (a.groups === 0 || a.groupsY === 0) return;
    if (this.slots === ARENA_SLOTS) this.flush();
    // distinct buffers get one binding each; an argument repeated (in place, or two views of one
    // workspace) is bound once — WebGPU allows a buffer in several writable bindings, but the
    // binding count is limited, and one binding per buffer keeps the kernels within it
    const distinct: GPUBuffer[] = [];
    const aliases = a.f32.map((b) => {
      let i = distinct.indexOf(b);
      if (i < 0) i = distinct.push(b) - 1;
      return i;
    });
    const i32 = a.i32 ?? [];
    const pipe = this.pipeline(k, aliases, i32.length);
    const slot = this.slots++;
    this.arenaHost.set(a.params, (slot * PARAM_BYTES) / 4);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arena, offset: slot * PARAM_BYTES, size: PARAM_BYTES } }];
    distinct.forEach((buffer, i) => entries.push({ binding: 1 + i, resource: { buffer } }));
    i32.forEach((buffer, i) => entries.push({ binding: 32 + i, resource: { buffer } }));
    const bind = this.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
    this.pass ??= this.enc().beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, bind);
    if (a.groupsY !== undefined) {
      this.pass.dispatchWorkgroups(a.groups, a.groupsY);
    } else {
      const x = Math.min(a.groups, MAX_GROUPS);
      this.pass.dispatchWorkgroups(x, Math.ceil(a.groups / x));
    }
    this.dispatches++;
  }

  /** Submit everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.slots > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, (this.slots * PARAM_BYTES) / 4);
    this.device.queue.submit([this.encoder.finish()]);
    this.submits++;
    this.encoder = null;
    this.slots = 0;
    for (const b of this.transient) b.destroy(); // freed once the submitted work is done
    this.transient = [];
  }

  /** Copy bytes out of a buffer: submits what is recorded, then waits for the copy. */
  async read(src: GPUBuffer, byteOff: number, bytes: number): Promise<ArrayBuffer> {
    if (bytes === 0) return new ArrayBuffer(0);
    const staging = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: MAP_READ | COPY_DST });
    this.endPass().copyBufferToBuffer(src, byteOff, staging, 0, Math.ceil(bytes / 4) * 4);
    this.flush();
    try {
      await staging.mapAsync(MAP_MODE_READ);
      const out = staging.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
      this.throwErrors();
      return out;
    } finally {
      staging.destroy();
    }
  }

  private throwErrors(): void {
    if (this.errors.length === 0) return;
    const message = this.errors.join('\n');
    this.errors = [];
    throw new BackendError(`webgpu backend: the device reported: ${message}`);
  }

  /** Resolves when the GPU has finished everything submitted (after submitting what is recorded). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwErrors();
  }
}
