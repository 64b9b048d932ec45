/**
 * writeFileAtomic's housekeeping: temporary files that a killed write left next to its target are
 * removed by the next write of the same target (only those whose writer process is gone), and a
 * failed write names the target, not its temporary file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic, writeFileAtomicAsync } from '../src/io/atomic.ts';

const root = mkdtempSync(join(tmpdir(), 'recur-atomic-stale-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

/** A pid no process has now (process.kill(pid, 0) answers ESRCH). */
function unusedPid(): number {
  for (let pid = 4_000_000; pid > 1000; pid -= 7919) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
  throw new Error('no unused pid found');
}

for (const [label, write] of [
  ['writeFileAtomic', async (p: string, d: string) => writeFileAtomic(p, d)],
  ['writeFileAtomicAsync', writeFileAtomicAsync],
] as const) {
  test(`${label}: removes the stale temp files of its target, and only those`, async () => {
    const dir = mkdtempSync(join(root, 'w-'));
    const dead = unusedPid();
    const stale = `.model.safetensors.${dead}.0123456789ab.tmp`;
    // a live writer's (our parent runs), another target's, and one that only looks similar
    const live = `.model.safetensors.${process.ppid}.0123456789ab.tmp`;
    const other = `.best.safetensors.${dead}.0123456789ab.tmp`;
    const similar = `.model.safetensors.${dead}.notatemp.tmp`;
    for (const f of [stale, live, other, similar]) writeFileSync(join(dir, f), 'half a write');
    await write(join(dir, 'model.safetensors'), 'whole');
    assert.deepEqual(readdirSync(dir).sort(), [live, other, similar, 'model.safetensors'].sort());
    assert.equal(readFileSync(join(dir, 'model.safetensors'), 'utf8'), 'whole');
  });

  test(`${label}: a failed write names the target, keeps the error code, and leaves no temp file`, async () => {
    const dir = mkdtempSync(join(root, 'f-'));
    const target = join(dir, 'missing', 'out.svg');
    await assert.rejects(write(target, 'x'), (e: NodeJS.ErrnoException) => {
      assert.equal(e.message, `cannot write '${target}': ENOENT: no such file or directory`);
      assert.equal(e.code, 'ENOENT');
      assert.doesNotMatch(e.message, /\.tmp/);
      return true;
    });
    assert.deepEqual(readdirSync(dir), []);
  });
}
