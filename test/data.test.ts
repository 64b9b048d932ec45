/**
 * The data layer: tokenizers, vocabulary, padding with lengths, bucketing, seeded batch sources,
 * loaders (text, CSV, JSONL) with every bad-input case, normalisation, and the fixed splits of the
 * packaged data sets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CharTokenizer, WordTokenizer, tokenizerFromJSON, TokenizerError } from '../src/data/tokenize.ts';
import { Vocab, VocabError } from '../src/data/vocab.ts';
import { bucketByLength, deriveSeed, ExampleSource, fitLength, ListSource, padSequences, permutation, SampledSource, SequenceLengthError } from '../src/data/batch.ts';
import { DataError, denormalizeRow, fitNormStats, normalizeRows, parseCSV, parseJSONL, parseNumericCSV, checkNormStats } from '../src/data/loaders.ts';
import { loadJSONL, loadLines, loadNumericCSV, loadText } from '../src/data/files.ts';
import { emailToText, emailToTextIfRaw, firstNames, mobyDick, sensorNetwork, spamAssassin, splitBySeed, splitSeries } from '../src/data/datasets.ts';
import { Rng } from '../src/tensor/rng.ts';

const dir = mkdtempSync(join(tmpdir(), 'recur-data-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

// ---- tokenizers ------------------------------------------------------------------------------

test('char tokenizer: code points, optional lower-casing, JSON round trip', () => {
  const t = new CharTokenizer();
  assert.deepEqual(t.tokenize('Zoë 😀'), ['Z', 'o', 'ë', ' ', '😀']);
  assert.equal(t.detokenize(t.tokenize('Zoë 😀')), 'Zoë 😀');
  assert.deepEqual(new CharTokenizer({ lowercase: true }).tokenize('AbC'), ['a', 'b', 'c']);
  const back = tokenizerFromJSON(JSON.parse(JSON.stringify(new CharTokenizer({ lowercase: true }))));
  assert.deepEqual(back.tokenize('Ab'), ['a', 'b']);
});

test('word tokenizer: words with apostrophes, punctuation as tokens, long words cut', () => {
  const t = new WordTokenizer();
  assert.deepEqual(t.tokenize("Don't PANIC: <b>free</b> $100!!"), ["don't", 'panic', ':', '<', 'b', '>', 'free', '<', '/', 'b', '>', '$', '100', '!', '!']);
  assert.deepEqual(new WordTokenizer({ maxTokenChars: 4 }).tokenize('abcdefgh ij'), ['abcd', 'ij']);
  assert.deepEqual(t.tokenize('   '), []);
  assert.deepEqual(tokenizerFromJSON(t.toJSON()).toJSON(), t.toJSON());
});

test('tokenizers reject bad options and non-strings', () => {
  assert.throws(() => new WordTokenizer({ maxTokenChars: 0 }), /maxTokenChars must be a positive integer/);
  assert.throws(() => new CharTokenizer({ lowercas: true } as never), /unknown option 'lowercas'/);
  assert.throws(() => new CharTokenizer().tokenize(null as never), TokenizerError);
  assert.throws(() => tokenizerFromJSON({ type: 'bpe' }), /unknown tokenizer type "bpe"/);
});

// ---- vocabulary --------------------------------------------------------------------------------

test('vocab: specials first, then by count with code-point tie-break; deterministic', () => {
  const seqs = [['b', 'a', 'c'], ['a', 'b'], ['a', 'd']];
  const v = Vocab.build(seqs);
  assert.deepEqual(v.tokens, ['<pad>', '<unk>', '<s>', '</s>', 'a', 'b', 'c', 'd']);
  assert.equal(v.padId, 0);
  assert.equal(v.unkId, 1);
  assert.deepEqual(Vocab.build(seqs).tokens, v.tokens);
  const small = Vocab.build(seqs, { minCount: 2, specials: { bos: false, eos: false } });
  assert.deepEqual(small.tokens, ['<pad>', '<unk>', 'a', 'b']);
  assert.equal(small.bosId, null);
  assert.deepEqual(Vocab.build(seqs, { maxSize: 6 }).tokens, ['<pad>', '<unk>', '<s>', '</s>', 'a', 'b']);
});

test('vocab: unknown tokens at inference map to unk; decode; framing with bos/eos', () => {
  const v = Vocab.build([['x', 'y']]);
  assert.deepEqual([...v.encode(['x', 'never-seen', 'y'])], [v.id('x'), v.unkId, v.id('y')]);
  assert.deepEqual([...v.encode(['x'], { bos: true, eos: true })], [v.bosId, v.id('x'), v.eosId]);
  assert.deepEqual(v.decode([v.bosId!, v.id('x'), v.unkId!, v.eosId!, v.padId!], { skipSpecials: true }), ['x', '<unk>']);
  assert.throws(() => v.decode([99]), /id 99 at position 0 is outside the vocabulary/);
  assert.equal(v.countUnknown(['x', 'z', 'w']), 2);
});

test('vocab without unk: an unknown token is an error naming it and its position', () => {
  const v = Vocab.build([['x', 'y']], { specials: { unk: false } });
  assert.throws(() => v.encode(['x', 'y', 'zebra']), (e: Error) => e instanceof VocabError && /unknown token "zebra" at position 2/.test(e.message) && /no unk token/.test(e.message));
  assert.throws(() => v.id('zebra'), /unknown token "zebra"/);
  assert.throws(() => v.requireSpecial('unk', 'the classifier'), /no unk token \(the classifier needs one\)/);
  const nobos = Vocab.build([['x']], { specials: { bos: false } });
  assert.throws(() => nobos.encode(['x'], { bos: true }), /no bos token/);
});

test('vocab: JSON round trip and validation of bad input', () => {
  const v = Vocab.build([['héllo', 'wörld', 'héllo']]);
  const back = Vocab.fromJSON(JSON.parse(JSON.stringify(v.toJSON())));
  assert.deepEqual(back.tokens, v.tokens);
  assert.deepEqual(back.specials, v.specials);
  assert.deepEqual([...back.encode(['wörld', '?'])], [...v.encode(['wörld', '?'])]);
  assert.throws(() => Vocab.fromJSON({ tokens: ['a', 'a'], specials: {} }), /appears twice/);
  assert.throws(() => Vocab.fromJSON({ tokens: ['a'], specials: { unk: '<unk>' } }), /unk token "<unk>" is not in the vocabulary/);
  assert.throws(() => Vocab.fromJSON({ tokens: ['a'], extra: 1 }), /unknown field 'extra'/);
  assert.throws(() => Vocab.build([]), /no token occurs/);
  assert.throws(() => Vocab.build([['a']], { minCount: 0 }), /minCount must be a positive integer/);
  assert.throws(() => Vocab.build([['a']], { specials: { sep: true } as never }), /unknown special token 'sep'/);
});

// ---- padding and batching --------------------------------------------------------------------------

test('padSequences: time-major ids with per-sample lengths, pad id past the end', () => {
  const p = padSequences([[1, 2, 3], [4], [5, 6]], { padId: 0 });
  assert.equal(p.T, 3);
  assert.equal(p.B, 3);
  assert.deepEqual([...p.lengths], [3, 1, 2]);
  // ids[t·B + b]
  assert.deepEqual([...p.ids], [1, 4, 5, 2, 0, 6, 3, 0, 0]);
  const bm = padSequences([[1, 2, 3], [4]], { padId: 9, major: 'batch' });
  assert.deepEqual([...bm.ids], [1, 2, 3, 4, 9, 9]);
});

test('padSequences: a too-long sequence is an error unless truncation is asked for', () => {
  assert.throws(() => padSequences([[1, 2], [1, 2, 3, 4, 5]], { padId: 0, maxLen: 3 }), (e: Error) => e instanceof SequenceLengthError && /sequence 1 has 5 tokens, more than maxLen 3/.test(e.message));
  const end = padSequences([[1, 2, 3, 4, 5]], { padId: 0, maxLen: 3, truncate: 'end' });
  assert.deepEqual([...end.ids], [1, 2, 3]);
  const start = padSequences([[1, 2, 3, 4, 5]], { padId: 0, maxLen: 3, truncate: 'start' });
  assert.deepEqual([...start.ids], [3, 4, 5]);
  assert.throws(() => fitLength([1, 2, 3], 2, false, 'input 7'), /input 7 has 3 tokens, more than the maximum 2/);
  assert.deepEqual(fitLength([1, 2, 3], 2, 'start'), [2, 3]);
  assert.throws(() => padSequences([[1], []], { padId: 0 }), /sequence 1 is empty/);
  assert.deepEqual([...padSequences([[1], []], { padId: 0, allowEmpty: true }).lengths], [1, 0]);
  assert.throws(() => padSequences([], { padId: 0 }), /empty batch/);
  assert.throws(() => padSequences([[1]], { padId: 0, truncate: 'middle' as never }), /truncate must be/);
  assert.throws(() => padSequences([[1]], { padId: 0, maxlen: 3 } as never), /unknown option 'maxlen'/);
});

test('bucketByLength: every index exactly once, similar lengths together, seeded', () => {
  const lengths = Array.from({ length: 103 }, (_, i) => (i * 37) % 50 + 1);
  const a = bucketByLength(lengths, 8, { rng: new Rng(5), poolBatches: 4 });
  const b = bucketByLength(lengths, 8, { rng: new Rng(5), poolBatches: 4 });
  assert.deepEqual(a, b);
  assert.deepEqual(a.flat().sort((x, y) => x - y), Array.from({ length: 103 }, (_, i) => i));
  // Within a batch the spread of lengths is far below the overall spread (1…50).
  const spreads = a.filter((x) => x.length === 8).map((bt) => Math.max(...bt.map((i) => lengths[i])) - Math.min(...bt.map((i) => lengths[i])));
  assert.ok(spreads.reduce((s, x) => s + x, 0) / spreads.length < 15, `mean spread ${spreads}`);
  const det = bucketByLength(lengths, 10);
  for (let k = 1; k < det.length; k++) assert.ok(lengths[det[k][0]] >= lengths[det[k - 1][det[k - 1].length - 1]]);
  assert.equal(bucketByLength(lengths, 10, { dropLast: true }).length, 10);
});

test('ExampleSource: batch (epoch, index) is a pure function; epochs reshuffle; eval order fixed', () => {
  const examples = Array.from({ length: 50 }, (_, i) => ({ id: i, len: (i % 7) + 1 }));
  const mk = (seed: number, shuffle = true) => new ExampleSource(examples, { batchSize: 8, seed, shuffle, lengthOf: (e) => e.len, collate: (es) => es.map((e) => e.id) });
  const s1 = mk(3), s2 = mk(3);
  assert.equal(s1.numBatches, 7);
  // Same address, same batch — in any order of asking.
  const first = s1.get(2, 4);
  s1.get(0, 0);
  assert.deepEqual(s1.get(2, 4), first);
  assert.deepEqual(s2.get(2, 4), first);
  const epoch = (s: ExampleSource<{ id: number; len: number }, number[]>, e: number) => Array.from({ length: s.numBatches }, (_, i) => s.get(e, i)).flat();
  assert.deepEqual(epoch(s1, 0).sort((a, b) => a - b), examples.map((e) => e.id));
  assert.notDeepEqual(epoch(s1, 0), epoch(s1, 1));
  assert.notDeepEqual(epoch(s1, 0), epoch(mk(4), 0));
  const ev = mk(3, false);
  assert.deepEqual(epoch(ev, 0), epoch(ev, 5));
  assert.throws(() => s1.get(0, 7), /batch index 7 is outside \[0, 7\)/);
  assert.throws(() => s1.get(-1, 0), /epoch must be a non-negative integer/);
  assert.throws(() => new ExampleSource([], { batchSize: 2, collate: (x) => x }), /no examples/);
});

test('SampledSource and ListSource are deterministic by address', () => {
  const s = new SampledSource(5, 11, (rng) => [rng.int(1000), rng.int(1000)]);
  assert.deepEqual(s.get(3, 2), s.get(3, 2));
  assert.notDeepEqual(s.get(3, 2), s.get(3, 3));
  assert.notDeepEqual(s.get(3, 2), s.get(4, 2));
  assert.throws(() => s.get(0, 5), /outside/);
  const l = new ListSource(['a', 'b']);
  assert.equal(l.get(9, 1), 'b');
  assert.equal(deriveSeed(1, 2), deriveSeed(1, 2));
  assert.notEqual(deriveSeed(1, 2), deriveSeed(2, 1));
  assert.deepEqual(permutation(5, new Rng(1)), permutation(5, new Rng(1)));
});

// ---- loaders ----------------------------------------------------------------------------------------

test('empty files are clear errors for every loader', () => {
  const empty = file('empty.txt', '');
  const blank = file('blank.txt', '\n  \n\t\n');
  assert.throws(() => loadText(empty), (e: Error) => e instanceof DataError && e.message.includes(empty) && /the file is empty/.test(e.message));
  assert.throws(() => loadText(blank), /the file is empty/);
  assert.throws(() => loadLines(blank), /the file is empty/);
  assert.throws(() => loadNumericCSV(file('empty.csv', '')), /the file is empty/);
  assert.throws(() => loadJSONL(file('empty.jsonl', '\n\n')), /the file is empty/);
  assert.throws(() => loadNumericCSV(file('header.csv', 'a,b\n')), /a header but no data rows/);
  assert.throws(() => loadText(join(dir, 'missing.txt')), /missing.txt' does not exist/);
});

test('text loaders: whole text (CRLF normalised), non-blank lines', () => {
  assert.equal(loadText(file('t.txt', 'one\r\ntwo\r\n')), 'one\ntwo\n');
  assert.deepEqual(loadLines(file('l.txt', 'a  \n\n b\n')), ['a', ' b']);
});

test('CSV: numeric columns, quoted cells, column selection', () => {
  const t = parseCSV('name,"x, y",z\n"a ""q""",1,2\r\nb,3,4\n\n');
  assert.deepEqual(t.header, ['name', 'x, y', 'z']);
  assert.deepEqual(t.rows, [['a "q"', '1', '2'], ['b', '3', '4']]);
  const n = parseNumericCSV('t,h,label\n1,2.5,x\n2,-3e-1,y\n', { columns: ['h', 't'] });
  assert.deepEqual(n.columns, ['h', 't']);
  assert.deepEqual(n.data, [[2.5, 1], [-0.3, 2]]);
});

test('CSV: a non-numeric cell is an error naming its row, line and column', () => {
  const p = file('bad.csv', 'time,temp\n1,20.5\n2,warm\n');
  assert.throws(() => loadNumericCSV(p), (e: Error) => e instanceof DataError && e.message.includes(p) && /row 2 \(line 3\), column 'temp': "warm" is not a number/.test(e.message));
  assert.throws(() => parseNumericCSV('a\n1\n\n \n2\n,\n'), /wrong|has 2 cells/);
  assert.throws(() => parseNumericCSV('a,b\n1,\n'), /row 1 \(line 2\), column 'b': the cell is empty/);
  for (const bad of ['NaN', 'Infinity', '0x10', '1e', '--1']) {
    assert.throws(() => parseNumericCSV(`a\n${bad}\n`), /is not a number/, bad);
  }
  assert.throws(() => parseNumericCSV('a,b\n1,2\n3\n'), /row 2 \(line 3\) has 1 cells, the header has 2/);
  assert.throws(() => parseNumericCSV('a,b\n1,2\n', { columns: ['c'] }), /no column 'c' \(the columns are: a, b\)/);
  assert.throws(() => parseCSV('a,a\n1,2\n'), /names column 'a' twice/);
  assert.throws(() => parseCSV('a\n"open\n'), /never closed/);
});

test('normalisation stats: fitted on rows, JSON-safe, invertible', () => {
  const rows = [[1, 10], [3, 10], [5, 10]];
  const s = fitNormStats(rows, ['a', 'b']);
  assert.deepEqual(s.mean, [3, 10]);
  assert.ok(Math.abs(s.std[0] - Math.sqrt(8 / 3)) < 1e-12);
  assert.equal(s.std[1], 1, 'a constant column gets std 1');
  const n = normalizeRows(rows, s);
  assert.ok(Math.abs(n[0][0] + Math.sqrt(3 / 2)) < 1e-12);
  assert.deepEqual(denormalizeRow(n[2], s).map((v) => Math.round(v * 1e9) / 1e9), [5, 10]);
  assert.deepEqual(checkNormStats(JSON.parse(JSON.stringify(s))), s);
  assert.throws(() => checkNormStats({ columns: ['a'], mean: [0], std: [0] }), /positive std/);
});

test('JSONL pairs: input/target per line; bad lines named', () => {
  const pairs = parseJSONL('{"input": "hi", "target": "ham"}\n\n{"input": "buy", "target": 1}\n');
  assert.deepEqual(pairs, [{ input: 'hi', target: 'ham' }, { input: 'buy', target: '1' }]);
  assert.deepEqual(parseJSONL('{"q": "a", "a": "b"}', { inputKey: 'q', targetKey: 'a' }), [{ input: 'a', target: 'b' }]);
  const p = file('bad.jsonl', '{"input": "a", "target": "b"}\n{oops}\n');
  assert.throws(() => loadJSONL(p), (e: Error) => e.message.includes(p) && /line 2 is not valid JSON/.test(e.message));
  assert.throws(() => parseJSONL('[1, 2]'), /line 1 must be a JSON object/);
  assert.throws(() => parseJSONL('{"input": 3, "target": "x"}'), /line 1 has no string 'input'/);
  assert.throws(() => parseJSONL('{"input": "x"}'), /line 1 has no 'target'/);
});

// ---- data sets and splits -------------------------------------------------------------------------

test('splitBySeed: disjoint, complete, fixed by its seed', () => {
  const items = Array.from({ length: 1000 }, (_, i) => i);
  const a = splitBySeed(items, 7), b = splitBySeed(items, 7), c = splitBySeed(items, 8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.test, c.test);
  assert.equal(a.test.length, 100);
  assert.equal(a.val.length, 100);
  assert.deepEqual([...a.train, ...a.val, ...a.test].sort((x, y) => x - y), items);
  assert.throws(() => splitBySeed(items, 1, { val: 0.6, test: 0.5 }), /val \+ test < 1/);
});

test('SpamAssassin: fixed split, headers stripped, no duplicate across splits', () => {
  const s1 = spamAssassin(), s2 = spamAssassin();
  assert.deepEqual(s1.test.map((e) => e.text.slice(0, 80)), s2.test.map((e) => e.text.slice(0, 80)));
  const n = s1.train.length + s1.val.length + s1.test.length;
  assert.ok(n > 5800 && n < 6046, `${n} unique e-mails`);
  assert.ok(Math.abs(s1.test.length - n / 10) <= 1);
  const train = new Set(s1.train.map((e) => e.text));
  assert.ok(!s1.test.some((e) => train.has(e.text)), 'no test e-mail appears in training');
  const spamShare = s1.test.filter((e) => e.label === 1).length / s1.test.length;
  assert.ok(spamShare > 0.2 && spamShare < 0.45, `spam share ${spamShare}`);
  assert.ok(!/^Received:/m.test(s1.train[0].text), 'routing headers are dropped');
  assert.equal(emailToText('From: a@b\nSubject: Hello\n  world\nX-Spam: yes\n\nBody =\nline=3D1\n'), 'Hello world\n\nBody line=1\n');
  assert.equal(emailToTextIfRaw('From: a@b\nSubject: Hi\n\nBody'), 'Hi\n\nBody');
  assert.equal(emailToTextIfRaw('Just a note: no headers here\n\nBody'), 'Just a note: no headers here\n\nBody');
});

test('first names: split over distinct names, ambiguous names dropped or kept', () => {
  const d = firstNames();
  const k = firstNames({ ambiguous: 'keep' });
  assert.deepEqual(firstNames().val, d.val);
  const names = (l: { name: string }[]) => new Set(l.map((e) => e.name));
  const tr = names(k.train);
  assert.ok(![...names(k.test)].some((n) => tr.has(n)), 'a name is never in two splits');
  assert.ok(k.train.length > d.train.length);
  const lab = new Map<string, number>();
  for (const e of d.train) {
    assert.ok(!lab.has(e.name), `ambiguous name ${e.name} kept in the classification data`);
    lab.set(e.name, e.label);
  }
});

test('Moby-Dick and sensor network: fixed splits', () => {
  const m = mobyDick();
  assert.deepEqual(mobyDick().parts, m.parts);
  assert.equal(m.parts.val.length + m.parts.test.length + m.parts.train.length, 139);
  assert.ok(m.val.length > 20000 && m.test.length > 20000 && m.train.length > 1_000_000);
  const s = sensorNetwork();
  assert.deepEqual(s.columns, ['humidity', 'temperature']);
  assert.equal(s.train.length, 4);
  for (let i = 0; i < 4; i++) {
    const n = s.train[i].rows.length + s.val[i].rows.length + s.test[i].rows.length;
    assert.ok(Math.abs(s.val[i].rows.length - 0.15 * n) <= 1);
    assert.equal(s.val[i].name, s.train[i].name);
  }
  assert.ok(s.train.some((x) => x.flags!.some((f) => f === 1)), 'anomaly flags are carried');
  assert.throws(() => splitSeries([{ name: 'tiny', rows: [[1], [2], [3]] }]), /too few to split/);
});
