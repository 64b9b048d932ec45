#!/usr/bin/env python3
"""Training beyond one machine: a recur model file through PyTorch DistributedDataParallel and back.

recur's model files are safetensors files whose tensor names and shapes are the equivalent PyTorch
module's state_dict, with the config and vocabulary in the metadata. So a user who outgrows one
machine trains in PyTorch with DDP and brings the weights back. This script does the round trip
on one machine, with 2 processes, the gloo backend and 127.0.0.1 (the same code runs across
machines with MASTER_ADDR pointing at rank 0's host and torchrun starting the processes):

  1. `recur train charlm` for a few steps writes a model file;
  2. the file is read (by hand: the safetensors format is an 8-byte header length, a JSON header,
     then the raw tensors) into the equivalent torch module, strictly (every name, every shape);
  3. 2 DDP processes train it further on the same Moby-Dick training split recur uses, each rank
     on its own random windows, gradients averaged by DDP; rank 0 checks the ranks' weights agree;
  4. rank 0 writes the state_dict as safetensors with the original metadata (config, vocabulary),
     by hand when the `safetensors` module is not installed;
  5. `recur eval charlm` scores the file before and after, `recur predict charlm` runs it.

Usage (from the repository root, after `npm run build`):
    /usr/bin/python3 scripts/ddp_roundtrip.py [--steps 60] [--recur-steps 30] [--out DIR]
"""
import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECUR = [os.environ.get('NODE', 'node'), os.path.join(ROOT, 'bin', 'recur.mjs')]

# The training split recur's charlm task trains on (read from recur itself, not re-implemented).
TRAIN_TEXT_JS = r"""
import { mobyDick } from './src/data/datasets.ts';
process.stdout.write(JSON.stringify(mobyDick().train));
"""


class CharLM(nn.Module):
    """recur's charlm architecture (src/models/charlm.ts), with the same parameter names."""

    def __init__(self, V, E, H, L):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L)  # time-major, gate order i, f, g, o (recur uses PyTorch's)
        self.head = nn.Linear(H, V)

    def forward(self, x, state=None):
        y, state = self.lstm(self.embedding(x), state)
        return self.head(y), state


# ---- safetensors by hand (only F32 is needed here) ---------------------------------------------

def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop('__metadata__', {})
    body = data[8 + n:]
    tensors = {}
    for name, h in header.items():
        if h['dtype'] != 'F32':
            raise SystemExit(f'{path}: tensor {name} is {h["dtype"]}; this script reads F32 only')
        a, b = h['data_offsets']
        t = torch.frombuffer(bytearray(body[a:b]), dtype=torch.float32)
        tensors[name] = t.reshape(h['shape']).clone()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header, chunks, offset = {'__metadata__': meta}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous().cpu()
        raw = t.numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)  # the header is padded with spaces to a multiple of 8 bytes
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(chunks))
    os.replace(tmp, path)


def save_state_dict(path, state_dict, meta):
    try:
        from safetensors.torch import save_file  # the real thing when installed
        save_file({k: v.contiguous() for k, v in state_dict.items()}, path, metadata=meta)
        return 'safetensors.torch.save_file'
    except ImportError:
        write_safetensors(path, state_dict, meta)
        return 'written by hand (no safetensors module)'


# ---- the round trip -----------------------------------------------------------------------------

def recur(*args):
    r = subprocess.run([*RECUR, *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'recur {" ".join(args)} failed ({r.returncode}):\n{r.stderr}')
    return r.stdout


def build_model(path):
    tensors, meta = read_safetensors(path)
    cfg = json.loads(meta['recur.config'])
    if cfg.get('arch') != 'charlm' or cfg.get('cell') != 'lstm':
        raise SystemExit(f'{path}: expected a charlm LSTM model, got {cfg}')
    model = CharLM(cfg['vocabSize'], cfg['embeddingDim'], cfg['hiddenSize'], cfg['numLayers'])
    model.load_state_dict(tensors, strict=True)  # every name and shape, nothing else
    return model, meta


def worker(rank, world, port, a, model_path, train_ids, out_path, result_path):
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)  # same start on every rank (DDP also broadcasts rank 0's weights)
    model, meta = build_model(model_path)
    ddp = DDP(model)
    opt = torch.optim.Adam(ddp.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed * 1000 + rank)  # each rank its own windows
    T, B = a.seq_len, a.batch_size
    t0 = time.time()
    losses = []
    for _ in range(a.steps):
        starts = torch.randint(0, len(train_ids) - T, (B,), generator=gen)
        idx = starts[None, :] + torch.arange(T)[:, None]  # [T, B]
        logits, _ = ddp(train_ids[idx])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), train_ids[idx + 1].reshape(-1))
        opt.zero_grad()
        loss.backward()  # DDP all-reduces (averages) the gradients here
        nn.utils.clip_grad_norm_(ddp.parameters(), a.clip)
        opt.step()
        losses.append(loss.item())
    seconds = time.time() - t0
    # the ranks must hold the same weights: the spread of each parameter across ranks
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    lo, hi = flat.clone(), flat.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if rank == 0:
        meta = dict(meta)
        meta['recur.step'] = str(int(meta.get('recur.step', '0')) + a.steps)
        how = save_state_dict(out_path, model.state_dict(), meta)
        with open(result_path, 'w') as f:
            json.dump({'seconds': seconds, 'first_loss': sum(losses[:5]) / 5, 'last_loss': sum(losses[-5:]) / 5,
                       'rank_spread': (hi - lo).abs().max().item(), 'saved': how}, f)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--recur-steps', type=int, default=30, help='steps of `recur train charlm` before the round trip')
    p.add_argument('--steps', type=int, default=60, help='DDP steps (each rank a batch of --batch-size)')
    p.add_argument('--world', type=int, default=2, help='DDP processes')
    p.add_argument('--seq-len', type=int, default=64)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--lr', type=float, default=2e-2)
    p.add_argument('--clip', type=float, default=5.0)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--out', help='folder for the files (default: a new temporary one)')
    a = p.parse_args()
    out = a.out or tempfile.mkdtemp(prefix='recur-ddp-')
    os.makedirs(out, exist_ok=True)
    run = os.path.join(out, 'recur-run')
    print(f'torch {torch.__version__}; gloo available: {dist.is_gloo_available()}; files in {out}')

    print(f'1. recur train charlm --max-steps {a.recur_steps}')
    recur('train', 'charlm', '--max-steps', str(a.recur_steps), '--seed', str(a.seed), '--run-dir', run, '--overwrite')
    model_path = os.path.join(run, 'model.safetensors')
    before = json.loads(recur('eval', 'charlm', '--model', model_path, '--json'))['metrics']

    _, meta = build_model(model_path)
    vocab = json.loads(meta['recur.vocab'])
    index = {c: i for i, c in enumerate(vocab['chars'])}
    unk = index[vocab['unk']]
    text = json.loads(subprocess.run(['node', '--import', 'tsx', '--input-type=module', '-e', TRAIN_TEXT_JS],
                                     cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    train_ids = torch.tensor([index.get(c, unk) for c in text], dtype=torch.long)
    print(f'2. loaded into torch CharLM strictly ({sum(p.numel() for p in build_model(model_path)[0].parameters())} parameters); '
          f'training text {len(train_ids)} characters')

    out_path = os.path.join(out, 'ddp.safetensors')
    result_path = os.path.join(out, 'ddp-result.json')
    print(f'3. DDP: {a.world} processes, gloo on 127.0.0.1, {a.steps} steps of {a.batch_size}x{a.seq_len} per rank')
    mp.spawn(worker, args=(a.world, free_port(), a, model_path, train_ids, out_path, result_path), nprocs=a.world, join=True)
    with open(result_path) as f:
        r = json.load(f)
    print(f'   {r["seconds"]:.1f} s; train loss {r["first_loss"]:.3f} (first 5 steps) -> {r["last_loss"]:.3f} (last 5); '
          f'largest weight difference between ranks {r["rank_spread"]:.1e}')
    print(f'4. saved {out_path}: {r["saved"]}')

    after = json.loads(recur('eval', 'charlm', '--model', out_path, '--json'))['metrics']
    info = recur('info', out_path).strip().splitlines()[0]
    sample = recur('predict', 'charlm', '--model', out_path, 'Call me').strip()
    print('5. back in recur:')
    print(f'   recur info: {info}')
    print(f'   recur eval charlm (test): loss {before["loss"]:.4f} (bpc {before["bpc"]:.3f}) before DDP -> '
          f'{after["loss"]:.4f} (bpc {after["bpc"]:.3f}) after')
    print(f'   recur predict charlm "Call me": {sample!r}')
    if not after['loss'] < before['loss']:
        sys.exit('the DDP-trained model is not better on held-out data')


if __name__ == '__main__':
    main()
