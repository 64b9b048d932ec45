"""PyTorch's side of bench/webgpu.ts: the same stacked LSTM step (forward, loss sum(y*R) + sum(h_n),
backward), on CUDA (cuDNN) when PyTorch has it, else on the CPU at its faster of 1 and 2 threads.
Usage: python3 bench/webgpu_torch.py T B I H L"""
import statistics
import sys
import time

import torch

T, B, I, H, L = map(int, sys.argv[1:6])


def run(device):
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(I, H, num_layers=L).to(device)
    x = torch.rand(T, B, I, device=device) * 2 - 1
    r = torch.rand(T, B, H, device=device) * 2 - 1
    times = []
    for i in range(7):
        t0 = time.perf_counter()
        lstm.zero_grad()
        y, (h, _) = lstm(x)
        ((y * r).sum() + h.sum()).backward()
        if device == 'cuda':
            torch.cuda.synchronize()
        if i >= 2:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times), max(times)


if torch.cuda.is_available():
    ms, lo, hi = run('cuda')
    label = f'PyTorch {torch.__version__} CUDA ({torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()})'
else:
    best = None
    for threads in (1, 2):
        torch.set_num_threads(threads)
        m = run('cpu')
        if best is None or m[0] < best[1][0]:
            best = (threads, m)
    ms, lo, hi = best[1]
    label = f'PyTorch {torch.__version__} CPU ({best[0]} thread{"s" if best[0] > 1 else ""}, the faster)'
print(f'{label}: {ms:.1f} ms/step, {round(T * B / (ms / 1000)):,} tokens/s (spread {lo:.1f}–{hi:.1f} ms)')
