/**
 * Run one harness in a child process and turn what happened into a result: the child's summary,
 * or — when the child died (watchdog kill on a hang or memory growth, heap exhaustion under
 * --max-old-space-size=1024, any abort) — a failure with the input that was in flight, saved to
 * the regression folder. Plain JS so that both the test and scripts/fuzz.mjs can use it.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

export function runHarness({ harness, format, runs, seconds, seed, env = {}, saveDir = join(HERE, 'regressions'), timeoutMs }) {
  const tmp = mkdtempSync(join(tmpdir(), 'recur-fuzz-'));
  const current = join(tmp, 'current.bin');
  const args = ['--max-old-space-size=1024', '--import', 'tsx', join(HERE, 'run.ts'), '--harness', harness, '--seed', String(seed), '--current', current, '--save-dir', saveDir];
  if (runs !== undefined) args.push('--runs', String(runs));
  if (seconds !== undefined) args.push('--seconds', String(seconds));
  const t0 = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: Math.ceil(timeoutMs ?? ((seconds ?? 120) + 60) * 1000), killSignal: 'SIGKILL' });
  const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const line = out.split('\n').find((l) => l.startsWith('FUZZ-SUMMARY '));
  let result;
  if (line && r.status === 0) {
    result = JSON.parse(line.slice('FUZZ-SUMMARY '.length));
  } else {
    const wd = out.split('\n').find((l) => l.startsWith('FUZZ-WATCHDOG '));
    const why = wd ? JSON.parse(wd.slice('FUZZ-WATCHDOG '.length)) : null;
    const oom = /heap out of memory|Allocation failed/i.test(out);
    const kind = why ? why.kind : oom ? 'memory' : r.error?.code === 'ETIMEDOUT' ? 'hang' : 'crash';
    const message = why ? why.message : oom ? `${harness}: the child ran out of heap (--max-old-space-size=1024)` : `${harness}: the child exited with ${r.status ?? r.signal}: ${out.trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`;
    let file = '';
    if (existsSync(current)) {
      const bytes = readFileSync(current);
      const name = `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`;
      mkdirSync(join(saveDir, format), { recursive: true });
      if (!existsSync(join(saveDir, format, name))) writeFileSync(join(saveDir, format, name), bytes);
      file = `${format}/${name}`;
    }
    result = { harness, executions: null, seconds: (Date.now() - t0) / 1000, seed, failures: [{ signature: `${kind} (child killed)`, kind, message, file, known: false, seed }] };
  }
  rmSync(tmp, { recursive: true, force: true });
  return result;
}
