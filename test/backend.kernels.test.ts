/**
 * The shared kernel suite (test/helpers/kernel-suite.ts) run against the reference `js` backend in
 * both dtypes. Faster backends add one line each here (or in their own test file).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { JsBackend } from '../src/backend/js.ts';
import { BackendError } from '../src/backend/interface.ts';
import { getBackend, listBackends } from '../src/backend/registry.ts';
import { runKernelSuite } from './helpers/kernel-suite.ts';

runKernelSuite(new JsBackend(), 'float32');
runKernelSuite(new JsBackend(), 'float64');

describe('js backend specifics', () => {
  test('is registered as the default backend', () => {
    assert.ok(listBackends().includes('js'));
    assert.equal(getBackend().name, 'js');
    assert.equal(getBackend('js'), getBackend());
    assert.throws(() => getBackend('nope'), /unknown backend 'nope' \(available: .*js/);
  });
  test('rejects unknown dtypes and bad sizes with BackendError', () => {
    const be = new JsBackend();
    assert.throws(() => be.alloc(3, 'int8' as never), (e: Error) => e instanceof BackendError && /unknown dtype 'int8'/.test(e.message));
    assert.throws(() => be.alloc(-1, 'float32'), (e: Error) => e instanceof BackendError && /-1/.test(e.message));
    assert.throws(() => be.alloc(1.5, 'float64'), BackendError);
  });
  test('rejects unknown ops with BackendError', () => {
    const be = new JsBackend();
    const s = be.fromArray([1, 2], 'float64');
    const o = be.alloc(2, 'float64');
    assert.throws(() => be.unary('cube' as never, 2, s, o), /unknown unary op 'cube'/);
    assert.throws(() => be.unaryBackward('cube' as never, 2, s, s, s, o), /unknown unary op 'cube'/);
    assert.throws(() => be.binary('pow' as never, s, [2], s, [2], o, [2]), /unknown binary op 'pow'/);
    assert.throws(() => be.binary('add', s, [2], s, [1, 2], o, [2]), /equal ranks/);
  });
});
