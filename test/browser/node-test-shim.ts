/**
 * Just enough of `node:test` for the shared suites (test/helpers/) to run bundled in a browser page:
 * `describe` runs its body at once to collect tests under its name; `test` records one (with
 * node:test's `{ skip }` option); `after` records a hook. `runCollected()` then runs the tests one
 * after another, awaiting each, and returns what happened to each — the page hands that list to
 * the Node test (test/webgpu.browser.test.ts), which turns every entry back into a node:test test.
 */
type Fn = () => unknown;
interface Options { skip?: string | boolean; timeout?: number }

export interface CollectedResult {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  /** The failure's message (fail) or the reason (skip). */
  detail?: string;
  ms: number;
}

const tests: { name: string; fn: Fn; skip: string | false }[] = [];
const hooks: Fn[] = [];
const prefix: string[] = [];

export function describe(name: string, a: Options | Fn, b?: Fn): void {
  const fn = typeof a === 'function' ? a : b!;
  prefix.push(name);
  try {
    fn();
  } finally {
    prefix.pop();
  }
}

export function test(name: string, a: Options | Fn, b?: Fn): void {
  const fn = typeof a === 'function' ? a : b!;
  const skip = typeof a === 'function' ? false : a.skip;
  tests.push({ name: [...prefix, name].join(' › '), fn, skip: skip === true ? 'skipped' : skip || false });
}

export const it = test;

export function after(fn: Fn): void {
  hooks.push(fn);
}

export async function runCollected(): Promise<CollectedResult[]> {
  const results: CollectedResult[] = [];
  for (const t of tests.splice(0)) {
    const t0 = performance.now();
    if (t.skip) {
      results.push({ name: t.name, status: 'skip', detail: t.skip, ms: 0 });
      continue;
    }
    try {
      await t.fn();
      results.push({ name: t.name, status: 'pass', ms: performance.now() - t0 });
    } catch (e) {
      results.push({ name: t.name, status: 'fail', detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e), ms: performance.now() - t0 });
    }
  }
  for (const h of hooks.splice(0)) await h();
  return results;
}
