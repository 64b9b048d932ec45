/**
 * The `recur` command line, run as a user runs it: `node bin/recur.mjs ...` in a child process,
 * from another working directory.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/index.ts';
import { saveModel, saveSafetensors } from '../src/io/files.ts';
import { encodeSafetensors, type SafeTensor } from '../src/io/safetensors.ts';
import { formatModelInfo, readModelInfo, type ModelInfo } from '../src/cli/info.ts';
import { CharVocab } from '../src/data/text.ts';
import { CharLM } from '../src/models/charlm.ts';
import { flagLines, flagSpec, flagSynopsis, HELP_FLAG, parseCommand, type Flag } from '../src/cli/args.ts';

const BIN = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), 'recur-cli-'));
after(() => rmSync(DIR, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function recur(args: string[], timeout = 30_000): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: DIR, encoding: 'utf8', timeout, env: { ...process.env, RECUR_DEBUG: '' } });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function fmt(n: number): string {
  return n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function noStack(r: Run): void {
  assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace: ${r.stderr}`);
}

function savedCharLM(): { path: string; model: CharLM } {
  const vocab = CharVocab.fromText('Call me Ishmael. Some years ago');
  const model = new CharLM({ vocabSize: vocab.size, embeddingDim: 4, hiddenSize: 6, rng: new Rng(1) });
  const path = join(DIR, 'tiny.safetensors');
  saveModel(path, model, { config: model.config, vocab: vocab.toJSON() });
  return { path, model };
}

test('recur --help, recur help, recur <cmd> --help', () => {
  for (const args of [['--help'], ['-h'], ['help'], []]) {
    const r = recur(args);
    assert.equal(r.code, 0, `recur ${args.join(' ')}: ${r.stderr}`);
    for (const cmd of ['info', 'demo', 'sample', 'help']) assert.match(r.stdout, new RegExp(`^  ${cmd}\\b`, 'm'), `lists ${cmd}`);
  }
  const demo = recur(['demo', '--help']);
  assert.equal(demo.code, 0);
  for (const flag of ['--time', '--steps', '--out', '--seed', '--hidden']) assert.ok(demo.stdout.includes(flag), `demo help lists ${flag}`);
  assert.equal(recur(['help', 'demo']).stdout, demo.stdout);
  const info = recur(['info', '-h']);
  assert.equal(info.code, 0);
  assert.match(info.stdout, /recur info MODEL/);
  assert.match(recur(['sample', '--help']).stdout, /--temperature/);
  assert.match(recur(['--version']).stdout, /^recur \d+\.\d+\.\d+/);
});

test('a flag record gives the parser spec, the help lines and the usage line', () => {
  const flags: Record<string, Flag> = {
    format: { type: 'string', value: 'onnx', required: true, help: 'the format' },
    output: { type: 'string', short: 'o', shortForm: true, value: 'FILE', required: true, help: 'where to write' },
    inputs: { type: 'string', multiple: true, value: 'name=FILE', help: 'inputs' },
    'a-rather-long-flag': { type: 'string', value: 'VALUE', help: 'first line\nsecond line' },
    set: { type: 'string', value: 'k=v', helpOnly: true, help: 'taken off first' },
    help: HELP_FLAG,
  };
  assert.deepEqual(flagSpec(flags), {
    format: { type: 'string' },
    output: { type: 'string', short: 'o' },
    inputs: { type: 'string', multiple: true },
    'a-rather-long-flag': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  assert.equal(
    flagLines(flags, 16),
    [
      '  --format onnx the format',
      '  -o FILE       where to write',
      '  --inputs name=FILE   inputs',
      '  --a-rather-long-flag VALUE   first line',
      '                second line',
      '  --set k=v     taken off first',
      '  -h, --help    Show this help',
      '',
    ].join('\n'),
  );
  assert.equal(flagLines({ help: HELP_FLAG }, 18, 4), '    -h, --help    Show this help\n');
  assert.equal(flagSynopsis(flags), '--format onnx -o FILE [--inputs name=FILE] [--a-rather-long-flag VALUE] [--set k=v] [--help]');
  // a repeated flag arrives as a list
  assert.deepEqual({ ...parseCommand('recur x', ['--inputs', 'a=1', '--inputs=b=2', '-o', 'f'], flagSpec(flags), 0).values }, { inputs: ['a=1', 'b=2'], output: 'f' });
});

test('unknown commands and options exit 2 naming them', () => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['--frobnicate'], /unknown option '--frobnicate'/],
    [['info', '--bogus', 'x.safetensors'], /recur info: unknown option '--bogus'/],
    [['demo', '--nope'], /recur demo: unknown option '--nope'/],
    [['demo', '--time', 'soon'], /--time must be a number, got 'soon'/],
    [['demo', '--hidden', '0'], /--hidden must be a positive integer/],
    // a negative number is a value, not an option: the range check answers, not the parser
    [['demo', '--hidden', '-5'], /^recur demo: --hidden must be a positive integer, got '-5'\n/],
    [['demo', '--hidden=-5'], /^recur demo: --hidden must be a positive integer, got '-5'\n/],
    [['demo', '--time'], /--time/],
    [['info'], /missing the MODEL/],
    [['info', 'a', 'b'], /unexpected argument 'b'/],
    [['help', 'nothing'], /unknown command 'nothing'/],
  ];
  for (const [args, re] of cases) {
    const r = recur(args);
    assert.equal(r.code, 2, `recur ${args.join(' ')} → ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.match(r.stderr, /--help/, 'points to --help');
    // one style: `recur[ <cmd>]: message`, then one hint line
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0], /^recur( \w+)?: /);
    assert.match(lines[1], /^Run 'recur( \w+)? --help' for usage\.$/);
    noStack(r);
  }
});

test('every command reports errors in one style, with no doubled prefix', () => {
  const cases: [string, string[], number][] = [
    ['export', [], 2],
    ['export', ['x.safetensors', '--format', 'onnx', '-o', 'x.onnx'], 1],
    ['onnx', ['frob'], 2],
    ['onnx', ['info'], 2],
    ['import', [], 2],
    ['import', ['missing.onnx'], 1],
    ['plot', [], 2],
    ['diagnose', ['--bogus'], 2],
    ['diagnose', ['--steps=0'], 2],
    ['train', ['--epochs', '-5', 'charlm'], 2],
    ['train', ['classify-names', '--set', 'hiddenSize=-1'], 2],
    ['eval', ['charlm'], 2],
    ['predict', ['charlm', '--model=missing.safetensors', 'x'], 1],
    ['sample', [], 2],
    ['info', ['missing.safetensors'], 1],
  ];
  for (const [cmd, args, code] of cases) {
    const r = recur([cmd, ...args]);
    const what = `recur ${cmd} ${args.join(' ')}: ${r.stderr}`;
    assert.equal(r.code, code, what);
    const lines = r.stderr.trimEnd().split('\n');
    assert.match(lines[0], new RegExp(`^recur ${cmd}: \\S`), what);
    assert.doesNotMatch(lines[0], new RegExp(`^recur ${cmd}: (recur \\w+: |error: |(\\S+: )\\2)`), `no doubled prefix: ${what}`);
    assert.deepEqual(lines.slice(1), code === 2 ? [`Run 'recur ${cmd} --help' for usage.`] : [], what);
    noStack(r);
  }
  // the registry's own message begins with the task's name: it is not repeated
  assert.equal(recur(['train', 'classify-names', '--set', 'hiddenSize=-1']).stderr.split('\n')[0], "recur train: classify-names: option 'hiddenSize' must be a positive integer, got -1");
});

test('recur train --dry-run: one step\'s memory by part, nothing written; the js backend and --resume are refused', () => {
  const r = recur(['train', 'classify-names', '--dry-run', '--run-dir', 'dry']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^recur train classify-names --dry-run: [\d,]+ parameters; one training step on the first of [\d,]+ batches \(nothing trained or written\)$/);
  const part = (name: string) => {
    const m = new RegExp(`^  ${name} +([\\d.]+) (B|KiB|MiB|GiB)`).exec(lines.find((l) => l.startsWith(`  ${name} `)) ?? '');
    assert.ok(m, `${name} in ${r.stdout}`);
    return Number(m[1]) * 1024 ** ['B', 'KiB', 'MiB', 'GiB'].indexOf(m[2]);
  };
  assert.equal(part('gradients'), part('parameters'));
  assert.ok(Math.abs(part('optimizer state') - 2 * part('parameters')) <= 0.01 * part('optimizer state'), 'Adam: two moments per weight');
  assert.ok(part('activations') > 0 && part('total') > part('activations'));
  assert.equal(existsSync(join(DIR, 'dry')), false);
  const js = spawnSync(process.execPath, [BIN, 'train', 'classify-names', '--dry-run'], { cwd: DIR, encoding: 'utf8', env: { ...process.env, RECUR_BACKEND: 'js' } });
  assert.equal(js.status, 1);
  assert.match(js.stderr, /does not measure its memory .*unset RECUR_BACKEND=js/);
  assert.match(recur(['train', 'classify-names', '--dry-run', '--resume', 'x']).stderr, /--dry-run measures a new run; it does not go with --resume/);
});

test('a model file of another task says so (eval and predict)', () => {
  const { path } = savedCharLM();
  for (const cmd of ['eval', 'predict']) {
    const r = recur([cmd, 'classify-names', `--model=${path}`, ...(cmd === 'predict' ? ['Anna'] : [])]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `recur ${cmd}: ${path}: this is a charlm model; \`recur ${cmd} classify-names\` needs a classify-names model\n`);
  }
});

test('recur demo --out onto an existing file is refused before training unless --force', () => {
  const out = join(DIR, 'keep.safetensors');
  writeFileSync(out, 'precious');
  const r = recur(['demo', '--out', out, '--steps', '1']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `recur demo: '${out}' already exists; pass --force to replace it, or choose another --out\n`);
  assert.equal(r.stdout, '', 'no training started');
  assert.equal(readFileSync(out, 'utf8'), 'precious');
  const f = recur(['demo', `--out=${out}`, '--force', '--steps=2', '--hidden=8', '--embedding=4', '--seq-len=8', '--batch=2', '--sample-length=0'], 50_000);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stdout, /trained 2 steps/);
  assert.equal(recur(['info', out]).code, 0, 'replaced by a model file');
});

test('--opt=value works for the commands that take option values', () => {
  const { path } = savedCharLM();
  const s = recur(['sample', path, '--prime=Call', '--length=5', '--seed=1', '--temperature=0']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^Call.{5}\n$/s);
  const onnx = join(DIR, 'eq.onnx');
  const e = recur(['export', path, '--format=onnx', `--output=${onnx}`]);
  assert.equal(e.code, 0, e.stderr);
  assert.match(recur(['onnx', 'info', onnx]).stdout, /operators: /);
  const log = join(DIR, 'eq-metrics.jsonl');
  writeFileSync(log, '{"type":"train","step":1,"epoch":0,"time":0,"loss":2,"lr":0.1}\n{"type":"train","step":2,"epoch":0,"time":0,"loss":1,"lr":0.1}\n');
  const svg = join(DIR, 'eq.svg');
  const p = recur(['plot', log, `--output=${svg}`]);
  assert.equal(p.code, 0, p.stderr);
  assert.ok(existsSync(svg));
});

test('recur info: architecture, parameter count, metadata and tensors; --json', () => {
  const { path, model } = savedCharLM();
  const r = recur(['info', path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /architecture\s+charlm \(vocabSize \d+, embeddingDim 4, hiddenSize 6, numLayers 1, cell lstm\)/);
  assert.match(r.stdout, new RegExp(`parameters\\s+${fmt(model.numParameters())}\\b`));
  assert.match(r.stdout, /recur\.vocab\s+\(vocabulary of \d+ tokens\)/);
  assert.doesNotMatch(r.stdout, /Ishmael/, 'the vocabulary itself is not printed');
  for (const [name, p] of model.namedParameters()) {
    assert.match(r.stdout, new RegExp(`^  ${name.replace(/\./g, '\\.')}\\s+F32\\s+\\[${p.shape.join(', ')}\\]`, 'm'), `tensor row ${name}`);
  }
  const j = recur(['info', path, '--json']);
  assert.equal(j.code, 0, j.stderr);
  const info = JSON.parse(j.stdout);
  assert.equal(info.numParameters, model.numParameters());
  assert.deepEqual(info.config, model.config);
  assert.equal(info.vocabSize, model.vocabSize);
  assert.deepEqual(info.metadataKeys.sort(), ['format', 'recur.config', 'recur.version', 'recur.vocab']);
  assert.deepEqual(info.tensors.map((t: { name: string }) => t.name).sort(), model.namedParameters().map(([n]) => n).sort());
});

test('recur info: a plain safetensors file without recur metadata', () => {
  const path = join(DIR, 'plain.safetensors');
  saveSafetensors(path, {
    'fc.weight': { dtype: 'F32', shape: [3, 2], data: new Float32Array(6) },
    steps: { dtype: 'I64', shape: [], data: new BigInt64Array(1) },
  });
  const r = recur(['info', path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /architecture\s+unknown/);
  assert.match(r.stdout, /parameters\s+7\b/);
  assert.match(r.stdout, /fc\.weight\s+F32\s+\[3, 2\]/);
  assert.match(r.stdout, /steps\s+I64\s+\[\]/);
  assert.equal(JSON.parse(recur(['info', '--json', path]).stdout).config, null);
});

test('recur info: a metadata key __proto__ is shown like any other key', () => {
  // hand-made header: JSON.parse keeps "__proto__" as an own key, and so must everything after it
  const header = '{"__metadata__":{"__proto__":"polluted","format":"pt"},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  const h = Buffer.from(header);
  const bytes = Buffer.alloc(8 + h.length + 1);
  bytes.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(bytes, 8);
  const path = join(DIR, 'proto.safetensors');
  writeFileSync(path, bytes);
  const r = recur(['info', path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}__proto__\s+polluted$/m);
  const j = recur(['info', '--json', path]);
  assert.equal(j.code, 0, j.stderr);
  const info = JSON.parse(j.stdout);
  assert.deepEqual(info.metadataKeys, ['__proto__', 'format']);
  assert.equal(Object.getOwnPropertyDescriptor(info.metadata, '__proto__')?.value, 'polluted');
});

test('recur info: many tensors never overflow the stack; over the tensors limit is a one-line error', () => {
  // formatting: 200,000 rows and metadata keys (a spread into Math.max overflowed at ~130k)
  const n = 200_000;
  const info: ModelInfo = {
    file: 'x.safetensors', bytes: 1, config: null, numParameters: 0, vocabSize: null,
    metadataKeys: Array.from({ length: n }, (_, i) => `k${i}`),
    metadata: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v'])),
    tensors: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, dtype: 'U8', shape: [0] })),
  };
  const text = formatModelInfo(info);
  assert.match(text, /tensors \(200000\):/);
  assert.match(text, /^ {2}t199999 +U8 +\[0\] +0$/m);
  // reading: a file of 130,000 (empty) tensors is over the default limit of 100,000
  const tensors: Record<string, SafeTensor> = {};
  for (let i = 0; i < 130_000; i++) tensors[`t${i}`] = { dtype: 'U8', shape: [0], data: new Uint8Array(0) };
  const path = join(DIR, 'many.safetensors');
  writeFileSync(path, encodeSafetensors(tensors));
  const r = recur(['info', path]);
  assert.equal(r.code, 1, r.stdout.slice(0, 200));
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /tensors in the header: 130000 is over the limit of 100000 \(tensors\)/);
  noStack(r);
  // with the limit raised, it is read and summarised
  const big = readModelInfo(path, { tensors: 200_000 });
  assert.equal(big.tensors.length, 130_000);
  assert.match(formatModelInfo(big), /tensors \(130000\):/);
});

test('recur info: a garbage or missing file exits 1 with one line', () => {
  const garbage = join(DIR, 'garbage.safetensors');
  writeFileSync(garbage, Buffer.from('this is not a safetensors file at all, just some text\n'));
  const truncated = join(DIR, 'truncated.safetensors');
  writeFileSync(truncated, Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b]));
  for (const [path, re] of [[garbage, /safetensors/], [truncated, /truncated/], [join(DIR, 'missing.safetensors'), /no such file/]] as const) {
    const r = recur(['info', path]);
    assert.equal(r.code, 1, `${path}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.match(r.stderr, /^recur info: /);
    assert.match(r.stderr, re);
    noStack(r);
  }
});

test('recur demo --time 3: trains, prints a sample, saves a model that info and sample read', () => {
  const out = join(DIR, 'demo.safetensors');
  const r = recur(['demo', '--time', '3', '--out', out, '--hidden', '24', '--embedding', '8', '--seq-len', '24', '--batch', '8', '--sample-every', '1.5', '--sample-length', '60', '--seed', '4'], 50_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /validation loss \d+\.\d+ nats\/char \(\d+\.\d+ bits\/char\)/);
  assert.match(r.stdout, /^ {4}The whale \S/m, 'prints a sample');
  assert.match(r.stdout, /final: validation loss/);
  assert.match(r.stdout, /recur info /);
  assert.match(r.stderr, /step [\d,]+ \| loss \d/, 'progress on stderr');
  assert.ok(existsSync(out));
  const info = recur(['info', '--json', out]);
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.deepEqual(j.config, { arch: 'charlm', vocabSize: j.vocabSize, embeddingDim: 8, hiddenSize: 24, numLayers: 1, cell: 'lstm' });
  assert.ok(j.vocabSize > 60);
  const training = JSON.parse(j.metadata['recur.training']);
  assert.ok(training.steps > 0 && training.valLoss > 0);
  const s = recur(['sample', out, '--prime', 'Call me ', '--length', '30', '--seed', '1']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^Call me .{30}/s);
  assert.equal(recur(['sample', out, '--prime', 'Call me ', '--length', '30', '--seed', '1']).stdout, s.stdout, 'seeded');
});

test('recur demo --steps stops at the step limit; a bad --out directory fails before training', () => {
  const out = join(DIR, 'steps.safetensors');
  const r = recur(['demo', '--steps', '5', '--time', '60', '--out', out, '--hidden', '8', '--embedding', '4', '--seq-len', '8', '--batch', '2', '--sample-length', '0'], 50_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /trained 5 steps/);
  assert.ok(existsSync(out));
  const bad = recur(['demo', '--out', join(DIR, 'no-such-dir', 'm.safetensors')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /does not exist/);
  noStack(bad);
});

test('recur demo: Ctrl-C (SIGINT) stops training, still evaluates and saves, exit 130', async () => {
  const out = join(DIR, 'interrupted.safetensors');
  const child = spawn(process.execPath, [BIN, 'demo', '--time', '60', '--out', out, '--hidden', '8', '--embedding', '4', '--seq-len', '8', '--batch', '2', '--sample-length', '20'], { cwd: DIR });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  // Interrupt once training has started (the header is printed right before the first step).
  const started = setInterval(() => {
    if (stdout.includes('baseline')) {
      clearInterval(started);
      setTimeout(() => child.kill('SIGINT'), 500);
    }
  }, 50);
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  clearInterval(started);
  assert.equal(code, 130, stderr);
  assert.match(stderr, /stopping after this step/);
  assert.match(stdout, /final: validation loss/);
  assert.match(stdout, /saved /);
  assert.ok(existsSync(out));
  assert.equal(recur(['info', out]).code, 0);
});

test('--limit KEY=N raises or lowers a resource limit for any command; bad ones are usage errors', () => {
  const { path, model } = savedCharLM();
  const n = model.namedParameters().length;
  assert.equal(recur(['info', path]).code, 0);
  // lowered below the file's tensor count: refused, naming the limit (both spellings, before or after the command)
  for (const args of [['--limit', `tensors=${n - 1}`, 'info', path], ['info', path, `--limit=tensors=${n - 1}`]]) {
    const r = recur(args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${n} is over the limit of ${n - 1} \\(tensors\\)`));
    noStack(r);
  }
  assert.equal(recur(['info', path, '--limit', `tensors=${n}`]).code, 0);
  // a limit must be a positive integer with a known key
  const bad = recur(['--limit', 'layers=0', 'info', path]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--limit: 'layers' must be a positive integer, got 0/);
  const unknown = recur(['--limit', 'nodes=5', 'info', path]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown limit 'nodes' \(keys: fileBytes, /);
  assert.match(recur(['--help']).stdout, /--limit KEY=N/);
});
