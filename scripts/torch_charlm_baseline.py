#!/usr/bin/env python3
"""PyTorch baseline for recur's `charlm` task: the SAME architecture, split, vocabulary, batch
recipe, optimizer and step count, trained independently in PyTorch, scored the same way.

    Embedding(V, E) -> LSTM(E, H, L) (time-major) -> Linear(H, V)
    Adam(lr), clip_grad_norm_(clip), `steps` batches of B random windows of T + 1 characters,
    float32, PyTorch's default initialisation (which recur's layers copy).

Held-out scoring is stateful, as in src/models/lm.ts: the held-out text is cut into
`eval_batch_size` contiguous streams read in chunks of T with the LSTM state carried across
chunks; the metric is mean cross-entropy (nats) and bits per character.

The split and the vocabulary are not re-implemented here: they are read from recur itself (a
short `node --import tsx` program prints the train/val/test texts of `mobyDick()` and the
vocabulary that `buildLM` builds), so both sides see exactly the same characters.

recur is trained as `recur train charlm` trains it: on the WebAssembly backend (the CLI's
default), with --threads threads (default 1, as PyTorch here).

Usage (from the repository root):
    /usr/bin/python3 scripts/torch_charlm_baseline.py                  # PyTorch only, recur defaults
    /usr/bin/python3 scripts/torch_charlm_baseline.py --compare        # also train recur, print both and the gap
    /usr/bin/python3 scripts/torch_charlm_baseline.py --compare --seeds 1 2 3 4 5 6 7 8   # mean and sd per side
    /usr/bin/python3 scripts/torch_charlm_baseline.py --same-start     # PyTorch replays recur's run
    /usr/bin/python3 scripts/torch_charlm_baseline.py --steps 50 --seeds 1 2 3

The defaults mirror `getTaskSpec('charlm').defaults` (2 epochs x 100 steps, E=32, H=128, L=1,
T=64, B=32, lr=2e-2, clip 5). Random windows and initial weights come from each side's own
generator, so the two runs differ by seed noise: with several --seeds, --compare trains both
sides once per seed and reports each side's mean and sample standard deviation of the held-out
loss, and the gap between the means.

--same-start separates the implementations from the randomness: recur trains with each seed and
records its initial weights, every training batch in order and each step's loss; PyTorch then
loads those weights (load_state_dict: the names are the same) and trains on those batches. Equal
implementations give step losses equal to float32 rounding and the same held-out loss.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SPLIT_JS = r"""
import { mobyDick } from './src/data/datasets.ts';
import { CharVocab } from './src/data/text.ts';
import { LM_UNK } from './src/models/lm.ts';
const m = mobyDick();
const vocab = CharVocab.fromText(m.train, { unk: LM_UNK });
process.stdout.write(JSON.stringify({ chars: vocab.chars, unk: LM_UNK, train: m.train, val: m.val, test: m.test }));
"""

RECUR_JS = r"""
import { getTaskSpec } from './src/models/registry.ts';
import { Trainer } from './src/train/trainer.ts';
import { loadWasmBackend } from './src/backend/wasm/index.ts';
import { setBackend } from './src/backend/registry.ts';
const { opts, threads, record } = JSON.parse(process.argv[1]);
// The backend `recur train` runs on (src/cli/main.ts selectBackend): WebAssembly, RECUR_THREADS threads.
await loadWasmBackend({ threads });
setBackend('wasm');
const spec = getTaskSpec('charlm');
const t0 = performance.now();
const b = spec.build(opts);
// --same-start: the initial weights, every training batch in the order the Trainer draws them,
// and the loss of each step, so PyTorch can replay exactly this run.
const init = record ? Object.fromEntries(Object.entries(b.task.model.stateDict()).map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.toArray()) }])) : null;
const batches = [], losses = [];
if (record) {
  const train = b.train, step = b.task.step.bind(b.task);
  b.train = { numBatches: train.numBatches, get(e, i) { const x = train.get(e, i); batches.push({ inputs: Array.from(x.inputs), targets: Array.from(x.targets), T: x.T, B: x.B }); return x; } };
  b.task.step = (x) => { const r = step(x); losses.push(r.loss.item()); return r; };
}
const r = await new Trainer(b.task, { ...b.trainOptions, progress: false, log: () => {} }).fit(b.train, null);
const seconds = (performance.now() - t0) / 1000;
const val = b.task.evaluate(b.val), test = b.task.evaluate(b.test);
process.stdout.write(JSON.stringify({ seed: opts.seed, steps: r.step, train_seconds: r.seconds, seconds, val_loss: val.loss, val_bpc: val.bpc, test_loss: test.loss, test_bpc: test.bpc, ...(record ? { init, batches, losses } : {}) }));
"""


def run_node(code, *args):
    out = subprocess.run(['node', '--import', 'tsx', '--input-type=module', '-e', code, *args], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


class CharLM(nn.Module):
    def __init__(self, V, E, H, L):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L)
        self.head = nn.Linear(H, V)

    def forward(self, x, state=None):
        y, state = self.lstm(self.embedding(x), state)
        return self.head(y), state


def encode(text, index, unk_id):
    return torch.tensor([index.get(c, unk_id) for c in text], dtype=torch.long)


def stream_batches(ids, T, B):
    """The same chunks as recur's streamBatches: B contiguous streams, chunks of T, tail dropped."""
    stream_len = (len(ids) - 1) // B
    for s in range(0, stream_len, T):
        t = min(T, stream_len - s)
        starts = torch.arange(B) * stream_len + s
        idx = starts[None, :] + torch.arange(t)[:, None]  # [t, B]
        yield ids[idx], ids[idx + 1]


@torch.no_grad()
def evaluate(model, ids, T, B):
    model.eval()
    state, nll, n = None, 0.0, 0
    for x, y in stream_batches(ids, T, B):
        logits, state = model(x, state)
        nll += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction='sum').item()
        n += y.numel()
    model.train()
    return nll / n


def train_torch(data, a, seed, replay=None):
    """Train and score PyTorch's model. `replay` (from --same-start): recur's initial weights and
    its training batches, used instead of PyTorch's own initialisation and random windows."""
    torch.manual_seed(seed)
    chars = data['chars']
    index = {c: i for i, c in enumerate(chars)}
    unk_id = index[data['unk']]
    train_ids = encode(data['train'], index, unk_id)
    val_ids = encode(data['val'], index, unk_id)
    test_ids = encode(data['test'], index, unk_id)
    model = CharLM(len(chars), a.embedding_dim, a.hidden_size, a.num_layers)
    if replay is not None:
        state = {k: torch.tensor(v['data'], dtype=torch.float32).reshape(v['shape']) for k, v in replay['init'].items()}
        model.load_state_dict(state, strict=True)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    T, B = a.seq_len, a.batch_size
    gen = torch.Generator().manual_seed(seed)
    losses = []
    t0 = time.time()
    for step in range(a.steps):
        if replay is None:
            starts = torch.randint(0, len(train_ids) - T, (B,), generator=gen)
            idx = starts[None, :] + torch.arange(T)[:, None]  # [T, B]
            x, y = train_ids[idx], train_ids[idx + 1]
        else:
            rb = replay['batches'][step]
            x = torch.tensor(rb['inputs'], dtype=torch.long).reshape(rb['T'], rb['B'])
            y = torch.tensor(rb['targets'], dtype=torch.long).reshape(rb['T'], rb['B'])
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
    train_seconds = time.time() - t0
    ev_b = a.eval_batch_size
    val, test = evaluate(model, val_ids, T, ev_b), evaluate(model, test_ids, T, ev_b)
    r = {'seed': seed, 'steps': a.steps, 'train_seconds': train_seconds, 'val_loss': val, 'val_bpc': val / math.log(2), 'test_loss': test, 'test_bpc': test / math.log(2)}
    return r, losses


def recur_options(a, seed):
    """recur's charlm options for the same configuration (steps = epochs x stepsPerEpoch)."""
    steps_per_epoch = 100 if a.steps % 100 == 0 else a.steps
    return {'epochs': a.steps // steps_per_epoch, 'stepsPerEpoch': steps_per_epoch, 'embeddingDim': a.embedding_dim, 'hiddenSize': a.hidden_size,
            'numLayers': a.num_layers, 'seqLen': a.seq_len, 'batchSize': a.batch_size, 'evalBatchSize': a.eval_batch_size, 'lr': a.lr, 'clipNorm': a.clip, 'seed': seed}


def mean_sd(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--steps', type=int, default=200, help='optimizer steps (recur: epochs x stepsPerEpoch; default 2 x 100)')
    p.add_argument('--embedding-dim', type=int, default=32)
    p.add_argument('--hidden-size', type=int, default=128)
    p.add_argument('--num-layers', type=int, default=1)
    p.add_argument('--seq-len', type=int, default=64)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--eval-batch-size', type=int, default=32)
    p.add_argument('--lr', type=float, default=2e-2)
    p.add_argument('--clip', type=float, default=5.0)
    p.add_argument('--seeds', type=int, nargs='+', default=[1])
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1)')
    p.add_argument('--same-start', action='store_true', help="train recur, then PyTorch from recur's initial weights on recur's batches, and compare the losses step by step")
    p.add_argument('--compare', action='store_true', help="also train recur's charlm with the same settings and report the gap")
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    data = run_node(SPLIT_JS)
    print(f"split: train {len(data['train'])} / val {len(data['val'])} / test {len(data['test'])} characters, vocabulary {len(data['chars'])}", file=sys.stderr)
    if a.same_start:
        for seed in a.seeds:
            rec = run_node(RECUR_JS, json.dumps({'opts': recur_options(a, seed), 'threads': a.threads, 'record': True}))
            if len(rec['batches']) != a.steps or len(rec['losses']) != a.steps:
                sys.exit(f"recur drew {len(rec['batches'])} batches and took {len(rec['losses'])} steps; expected {a.steps}")
            pt, losses = train_torch(data, a, seed, replay=rec)
            diffs = [abs(x - y) for x, y in zip(rec['losses'], losses)]
            for s in sorted({0, 1, 2, 4, 9, 19, 49, 99, 149, a.steps - 1} & set(range(a.steps))):
                print(json.dumps({'step': s + 1, 'recur_loss': rec['losses'][s], 'pytorch_loss': losses[s]}))
            keep = ('seed', 'steps', 'val_loss', 'val_bpc', 'test_loss', 'test_bpc')
            print(json.dumps({'side': 'recur', **{k: rec[k] for k in keep}}))
            print(json.dumps({'side': 'pytorch', **{k: pt[k] for k in keep}}))
            print(json.dumps({'seed': seed, 'same_start': True, 'max_step_loss_diff': max(diffs), 'first_step_loss_diff': diffs[0],
                              'mean_train_loss_recur': sum(rec['losses']) / a.steps, 'mean_train_loss_pytorch': sum(losses) / a.steps,
                              'val_relative_gap': (rec['val_loss'] - pt['val_loss']) / pt['val_loss']}))
        return
    runs = []
    for seed in a.seeds:
        r, _ = train_torch(data, a, seed)
        runs.append(r)
        print(json.dumps({'side': 'pytorch', **r}))
    pm, psd = mean_sd([r['val_loss'] for r in runs])
    result = {'seeds': a.seeds, 'pytorch_val_loss': pm, 'pytorch_val_loss_sd': psd}
    if a.compare:
        recs = []
        for seed in a.seeds:
            r = run_node(RECUR_JS, json.dumps({'opts': recur_options(a, seed), 'threads': a.threads, 'record': False}))
            recs.append(r)
            print(json.dumps({'side': 'recur', **r}))
        rm, rsd = mean_sd([r['val_loss'] for r in recs])
        result['recur_val_loss'] = rm
        result['recur_val_loss_sd'] = rsd
        result['relative_gap'] = (rm - pm) / pm
        result['within_2_percent'] = abs(result['relative_gap']) <= 0.02
    print(json.dumps(result))


if __name__ == '__main__':
    main()
