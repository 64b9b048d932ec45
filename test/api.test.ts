/**
 * The public API is tracked on purpose: api/recurjs.api.md (written by `npm run api` from the built
 * declarations) must match what the current build exports. A change of any exported name, kind or
 * signature fails here until the report is regenerated and committed, so it shows in review.
 * Needs dist/ (npm test builds it first).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

test('api/recurjs.api.md matches the built declarations', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, ['scripts/api-report.mjs', '--check'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `the public API changed — run \`npm run build && npm run api\`, review and commit api/recurjs.api.md:\n${r.stderr}${r.stdout}`);
});
