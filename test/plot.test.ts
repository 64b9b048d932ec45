/**
 * `recur plot`: the SVG is well-formed (every tag closed, attributes quoted, text escaped), has the
 * panels, axes, legends and series a person expects — train vs validation — and the command writes
 * it where asked, with clear errors for a missing or empty run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { escapeXml, formatTick, metricsPanels, niceTicks, plotCommand, renderMetricsSvg, renderSvg, smooth } from '../src/cli/plot.ts';
import { CliError, UsageError } from '../src/cli/args.ts';
import { stringifyEntry, type MetricsEntry } from '../src/train/metrics-log.ts';

const root = mkdtempSync(join(tmpdir(), 'recur-plot-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

/** A small XML checker: every element closed in order, attributes quoted, no stray '<' or '&'. */
function checkXml(svg: string): { tags: Map<string, number> } {
  assert.ok(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'), 'svg.startsWith(\'<?xml version="1.0" encoding="UTF-8"?>\\n<svg xmlns="http://www.w3.org...');
  const body = svg.replace(/^<\?xml[^?]*\?>/, '');
  const stack: string[] = [];
  const tags = new Map<string, number>();
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) {
    const between = body.slice(last, m.index);
    assert.ok(!/[<>]/.test(between), `stray markup near: ${between.slice(0, 60)}`);
    assert.ok(!/&(?!(amp|lt|gt|quot|apos);)/.test(between), `unescaped & in text: ${between.slice(0, 60)}`);
    last = re.lastIndex;
    const [, close, name, , self] = m;
    tags.set(name, (tags.get(name) ?? 0) + 1);
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else if (!self) stack.push(name);
  }
  assert.equal(body.slice(last).trim(), '', 'nothing after the root element');
  assert.deepEqual(stack, [], 'unclosed elements');
  return { tags };
}

function fakeRun(): MetricsEntry[] {
  const entries: MetricsEntry[] = [{ type: 'fit', step: 0, epoch: 0, time: 0, resumed: false, options: {} }];
  for (let s = 10; s <= 300; s += 10) {
    entries.push({ type: 'train', step: s, epoch: Math.floor(s / 100), time: s / 10, loss: 3 * Math.exp(-s / 80) + 0.1, lr: s < 50 ? 0.01 * (s / 50) : 0.01, tokensPerSec: 1000, gradNorm: 1, metrics: { accuracy: 1 - Math.exp(-s / 100) } });
    if (s % 50 === 0) entries.push({ type: 'eval', step: s, epoch: Math.floor(s / 100), time: s / 10, metrics: { accuracy: 0.9 - Math.exp(-s / 90), loss: 3 * Math.exp(-s / 90) + 0.2, 'ppl<&>': 5 }, primary: 'accuracy', best: 0.5 });
  }
  entries.push({ type: 'warning', step: 120, epoch: 1, time: 12, kind: 'grad-clipping', message: 'x' });
  return entries;
}

test('the SVG is well-formed and holds the train and validation series, axes and legends', () => {
  const svg = renderMetricsSvg(fakeRun(), { title: 'run <one> & two' });
  const { tags } = checkXml(svg);
  assert.ok(svg.includes('run &lt;one&gt; &amp; two'), 'svg.includes(\'run &lt;one&gt; &amp; two\')');
  for (const name of ['train', 'validation loss', 'train accuracy', 'validation accuracy', 'validation ppl&lt;&amp;&gt;', 'lr']) {
    assert.ok(svg.includes(`data-series="${name}"`), `series ${name}`);
  }
  const panelTitles = [...svg.matchAll(/class="panel-title"[^>]*>([^<]*)</g)].map((m) => m[1]);
  assert.deepEqual(panelTitles, ['Loss', 'accuracy', 'ppl&lt;&amp;&gt;', 'Learning rate']);
  assert.equal((svg.match(/class="x-label"/g) ?? []).length, 4);
  assert.equal((svg.match(/class="legend"/g) ?? []).length, 4);
  assert.ok((tags.get('polyline') ?? 0) >= 5, '(tags.get(\'polyline\') ?? 0) >= 5');
  assert.equal(tags.get('circle'), 6 * 3 + 3, 'a marker per evaluation (and per legend entry with markers)');
  // every coordinate is a finite number
  for (const m of svg.matchAll(/points="([^"]*)"/g)) for (const xy of m[1].split(' ')) assert.match(xy, /^-?\d+(\.\d+)?,-?\d+(\.\d+)?$/);
});

test('panels: validation loss joins the training loss; a constant lr gets no panel; gaps for NaN', () => {
  const entries: MetricsEntry[] = [
    { type: 'train', step: 1, epoch: 0, time: 0, loss: 2, lr: 0.1, tokensPerSec: 1, gradNorm: 1 },
    { type: 'train', step: 2, epoch: 0, time: 0, loss: Number.NaN, lr: 0.1, tokensPerSec: 1, gradNorm: 1 },
    { type: 'train', step: 3, epoch: 0, time: 0, loss: 1, lr: 0.1, tokensPerSec: 1, gradNorm: 1 },
    { type: 'eval', step: 3, epoch: 0, time: 0, metrics: { mse: 0.5 }, primary: 'mse', best: 0.5 },
  ];
  const panels = metricsPanels(entries);
  assert.deepEqual(panels.map((p) => p.title), ['Loss', 'mse']);
  assert.deepEqual(panels[0].series.map((s) => s.name), ['train']);
  const svg = renderSvg(panels);
  checkXml(svg);
  // the NaN breaks the line: no polyline with a single point, and both valid points drawn as markers or segments
  assert.ok(!svg.includes('NaN'), '!svg.includes(\'NaN\')');
  // Round-tripped through the log format (non-finite numbers as strings) the same panels come out.
  const text = entries.map((e) => stringifyEntry(e)).join('\n');
  assert.ok(text.includes('"loss":"NaN"'), 'text.includes(\'"loss":"NaN"\')');
});

test('ticks, labels and smoothing helpers', () => {
  assert.deepEqual(niceTicks(0, 1, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 297, 6).ticks, [0, 50, 100, 150, 200, 250, 300]);
  assert.deepEqual(niceTicks(0.1, 0.3, 5).ticks, [0.1, 0.15, 0.2, 0.25, 0.3]);
  const flat = niceTicks(2, 2);
  assert.ok(flat.lo < 2 && flat.hi > 2, 'flat.lo < 2 && flat.hi > 2');
  assert.equal(formatTick(0.30000000000000004), '0.3');
  assert.equal(formatTick(1e-5), '1e-5');
  assert.equal(formatTick(250000), '3e5');
  assert.equal(escapeXml(`a<b & "c" 'd'`), 'a&lt;b &amp; &quot;c&quot; &apos;d&apos;');
  const pts: [number, number][] = Array.from({ length: 200 }, (_, i) => [i, i % 2]);
  const sm = smooth(pts);
  assert.ok(sm.slice(10, 190).every(([, y]) => y > 0.3 && y < 0.7), 'alternating values average out');
  assert.equal(sm.length, 200);
});

test('plotCommand writes plot.svg into the run directory, or where -o says', async () => {
  const run = join(root, 'run1');
  mkdirSync(run);
  writeFileSync(join(run, 'metrics.jsonl'), `${fakeRun().map((e) => stringifyEntry(e)).join('\n')}\n{"type":"tra`);
  const out: string[] = [];
  const err: string[] = [];
  assert.equal(await plotCommand([run], { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) }), 0);
  assert.ok(existsSync(join(run, 'plot.svg')));
  checkXml(readFileSync(join(run, 'plot.svg'), 'utf8'));
  assert.deepEqual(out, [`${join(run, 'plot.svg')}\n`]);
  assert.match(err[0], /skipped 1 unreadable line/);
  const target = join(root, 'elsewhere.svg');
  assert.equal(await plotCommand([join(run, 'metrics.jsonl'), '-o', target], { stdout: () => {} }), 0);
  assert.ok(readFileSync(target, 'utf8').includes('Training curves: run1'));
  const help: string[] = [];
  assert.equal(await plotCommand(['--help'], { stdout: (t) => void help.push(t) }), 0);
  assert.match(help[0], /recur plot RUN \[-o FILE\]/);
});

test('plotCommand errors: no argument, unknown option, missing run, empty log', async () => {
  await assert.rejects(plotCommand([]), (e: Error) => e instanceof UsageError && /missing the RUN argument/.test(e.message));
  await assert.rejects(plotCommand(['x', '--width', '3']), (e: Error) => e instanceof UsageError && /unknown option '--width'/.test(e.message));
  await assert.rejects(plotCommand([join(root, 'nope')]), (e: Error) => e instanceof CliError && e.exitCode === 1 && /no such file or directory/.test(e.message));
  const empty = join(root, 'empty');
  mkdirSync(empty);
  writeFileSync(join(empty, 'metrics.jsonl'), '{"type":"fit","step":0,"epoch":0,"time":0,"resumed":false,"options":{}}\n');
  await assert.rejects(plotCommand([empty]), /no training steps or evaluations logged yet/);
});

test('plotCommand refuses a file that is not a metrics log', async () => {
  const cases: [string, string][] = [
    ['notes.txt', 'just some text\nover two lines\n'],
    // JSON lines of another kind, one even with a "type" the log uses but no step
    ['other.jsonl', '{"name":"a","value":1}\n{"type":"train","label":"x"}\n'],
  ];
  for (const [name, text] of cases) {
    const path = join(root, name);
    writeFileSync(path, text);
    const target = join(root, `${name}.svg`);
    await assert.rejects(plotCommand([path, '-o', target], { stdout: () => {} }), (e: Error) => e instanceof CliError && e.exitCode === 1 && e.message.startsWith(`${path}: not a metrics log: no entries of a metrics log found`), name);
    assert.ok(!existsSync(target), `no chart drawn for ${name}`);
  }
});

test('PLOT_HELP names every panel the plot draws, the learning rate included', async () => {
  const help: string[] = [];
  await plotCommand(['--help'], { stdout: (t) => void help.push(t) });
  const titles = [...renderMetricsSvg(fakeRun()).matchAll(/class="panel-title"[^>]*>([^<]*)</g)].map((m) => m[1]);
  assert.ok(titles.includes('Learning rate'), 'the run has a learning-rate panel');
  assert.match(help.join(''), /the learning rate when it changes/);
  assert.match(help.join(''), /one panel per other validation\s+metric/);
});

test('plotCommand: a failed write names the target file, not its temporary file', async () => {
  const run = join(root, 'run-write');
  mkdirSync(run);
  writeFileSync(join(run, 'metrics.jsonl'), `${fakeRun().map((e) => stringifyEntry(e)).join('\n')}\n`);
  const target = join(root, 'no-such-dir', 'plot.svg');
  await assert.rejects(plotCommand([run, '-o', target], { stdout: () => {} }), (e: Error) => {
    assert.ok(e instanceof CliError);
    assert.equal(e.message, `cannot write '${target}': ENOENT: no such file or directory`);
    return true;
  });
});
