/**
 * Which backend new tensors go to. The reference `js` backend is always present; faster backends
 * register themselves here when they load. `setBackend` changes the default for tensors created
 * afterwards; every op runs on the backend of its inputs and refuses to mix backends.
 */
import type { Backend } from './interface.ts';
import { BackendError } from './interface.ts';
import { JsBackend } from './js.ts';

const backends = new Map<string, Backend>();
const js = new JsBackend();
backends.set(js.name, js);
let current: Backend = js;

export function registerBackend(b: Backend): void {
  backends.set(b.name, b);
}

export function getBackend(name?: string): Backend {
  if (name === undefined) return current;
  const b = backends.get(name);
  if (!b) throw new BackendError(`unknown backend '${name}' (available: ${[...backends.keys()].join(', ')})`);
  return b;
}

export function setBackend(name: string): Backend {
  current = getBackend(name);
  return current;
}

export function listBackends(): string[] {
  return [...backends.keys()];
}
