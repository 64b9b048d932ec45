/**
 * Just enough of `node:assert/strict` for the shared suites (test/helpers/) in a browser page: the
 * five functions they use, with strict semantics (Object.is for equal, structural deepEqual).
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

function fail(message?: string): never {
  throw new AssertionError(message ?? 'Failed');
}

function ok(value: unknown, message?: string): asserts value {
  if (!value) fail(message ?? `expected a truthy value, got ${String(value)}`);
}

function equal(actual: unknown, expected: unknown, message?: string): void {
  if (!Object.is(actual, expected)) fail(message ? `${message} (got ${String(actual)}, expected ${String(expected)})` : `${String(actual)} !== ${String(expected)}`);
}

function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function deepEqual(actual: unknown, expected: unknown, message?: string): void {
  if (!same(actual, expected)) fail(message ?? `${JSON.stringify(actual)} does not deep-equal ${JSON.stringify(expected)}`);
}

function throws(fn: () => unknown, check?: ((e: Error) => boolean) | RegExp, message?: string): void {
  try {
    fn();
  } catch (e) {
    if (check instanceof RegExp) ok(check.test(String((e as Error).message)), message ?? `error '${(e as Error).message}' does not match ${check}`);
    else if (check) ok(check(e as Error), message ?? `the error '${(e as Error).message}' failed the check`);
    return;
  }
  fail(message ?? 'missing expected exception');
}

const assert = { ok, equal, deepEqual, fail, throws, AssertionError };
export default assert;
