/**
 * The page's side of a section worker: requests as promises, events to a listener.
 */
import type { BackendInfo, Reply, Request, WorkerEvent } from './protocol.ts';

type Body = Request extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

export class WorkerClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  backend: Promise<BackendInfo>;

  constructor(threads: number, webgpu: boolean, onEvent: (e: WorkerEvent) => void) {
    this.worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
    this.worker.addEventListener('message', (e: MessageEvent<Reply | WorkerEvent>) => {
      const m = e.data;
      if ('id' in m) {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.result);
        else p.reject(new Error(m.error));
      } else onEvent(m);
    });
    this.worker.addEventListener('error', (e) => onEvent({ type: 'log', message: `worker error: ${e.message}`, error: true }));
    this.backend = this.call({ type: 'init', threads, webgpu }) as Promise<BackendInfo>;
  }

  call<T = unknown>(body: Body, transfer: Transferable[] = []): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...body, id }, transfer);
    });
  }
}

/** Threads for the wasm backend: shared memory needs cross-origin isolation; else one. */
export function threadsForPage(): number {
  if (!globalThis.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
}

/**
 * The WebGPU switch: `?backend=webgpu` in the page's address (the checkbox reloads the page with or
 * without it). The section models then train on WebGPU; the wasm backend stays for everything else.
 */
export function webgpuForPage(): boolean {
  return new URLSearchParams(location.search).get('backend') === 'webgpu';
}

export function describeBackend(b: BackendInfo): string {
  const wasm = `${b.name} · ${b.threads} thread${b.threads === 1 ? '' : 's'} · ${b.isolated ? 'cross-origin isolated' : 'not isolated'}`;
  if (!b.gpu) return wasm;
  if ('error' in b.gpu) return `${wasm} · WebGPU did not load: ${b.gpu.error}`;
  return `webgpu (${b.gpu.adapter}${b.gpu.software ? ', a software adapter: slower than wasm' : ''}) for training · ${wasm}`;
}
