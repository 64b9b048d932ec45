#!/usr/bin/env python3
"""PyTorch side of the recur benchmark: the workloads of bench/lib/workloads.ts on CPU.

Usage: torch_bench.py SPEC_JSON OUT_JSON
  SPEC_JSON: {"system": name, "workloads": [{name, cell, V, H, B, T, layers}, ...], "policy": {...},
              "threads": n}
  (the policy fields are those of bench/lib/measure.ts). Writes {"torch": version, "threads": n,
  "results": [...]} to OUT_JSON.

Per workload: Embedding(V, H) -> nn.LSTM / nn.GRU / nn.RNN (H, H, layers) over [T, B] -> Linear(H, V)
-> cross-entropy, Adam(lr=1e-3), clip_grad_norm_(5). Warm-up, timed steps, median. Streaming:
batch 1, one token per call, state carried, no head, under no_grad.
Run it with the machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (the harness does).
"""
import json
import sys
import time

import torch
import torch.nn as nn


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def train_flops(w):
    g = {"lstm": 4, "gru": 3, "rnn": 1}[w["cell"]]
    return 3 * w["B"] * w["T"] * (w["layers"] * 2 * g * w["H"] * 2 * w["H"] + 2 * w["H"] * w["V"])


def run(w, p, est_ms):
    V, H, B, T, L = w["V"], w["H"], w["B"], w["T"], w["layers"]
    torch.manual_seed(0)
    emb, head = nn.Embedding(V, H), nn.Linear(H, V)
    rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[w["cell"]](H, H, num_layers=L)
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    x, y = torch.randint(0, V, (T, B)), torch.randint(0, V, (T, B))

    def step():
        opt.zero_grad()
        out, _ = rnn(emb(x))
        loss = lossf(head(out).reshape(T * B, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        return loss.item()

    warm, w0 = 0, time.perf_counter()
    loss_first = loss_last = float("nan")
    skip_warmup = est_ms is not None and est_ms > p["noWarmupAboveMs"]
    while not skip_warmup and (warm < p["warmupSteps"] or (time.perf_counter() - w0) * 1e3 < p["warmupMs"]):
        loss_last = step()
        if warm == 0:
            loss_first = loss_last
        warm += 1
    steps, cpu, t0 = [], [], time.perf_counter()
    while True:
        c = time.process_time()
        s = time.perf_counter()
        loss_last = step()
        e = time.perf_counter()
        cpu.append((time.process_time() - c) * 1e3)
        if not steps and warm == 0:
            loss_first = loss_last
        steps.append((e - s) * 1e3)
        elapsed = (e - t0) * 1e3
        if len(steps) >= p["maxSteps"] or elapsed >= p["maxMs"]:
            break
        if len(steps) >= p["minSteps"] and elapsed >= p["minMs"]:
            break
    med = median(steps)

    with torch.no_grad():
        rnn.eval()
        xi = torch.tensor([[3]])
        state = [None]

        def call():
            _, state[0] = rnn(emb(xi), state[0])

        c0, warm_calls = time.perf_counter(), 0
        while warm_calls < p["streamWarmup"] and (warm_calls < 3 or (time.perf_counter() - c0) * 1e3 < p["streamWarmupMs"]):
            call()
            warm_calls += 1
        per = max((time.perf_counter() - c0) * 1e3 / warm_calls, 1e-3)
        k = max(1, round(p["streamChunkMs"] / per))
        chunks, cchunks, calls, t1 = [], [], 0, time.perf_counter()
        while len(chunks) < p["streamMinChunks"] or (time.perf_counter() - t1) * 1e3 < p["streamMinMs"]:
            c = time.process_time()
            s = time.perf_counter()
            for _ in range(k):
                call()
            chunks.append((time.perf_counter() - s) / k)
            cchunks.append((time.process_time() - c) / k)
            calls += k

    extra = {"note": "no separate warm-up step (estimated > 20 s/step; the kernels were warm from the smaller workloads before it)"} if warm == 0 else {}
    return {**extra, "train_tok_s": round(B * T / (med / 1e3)), "ms_per_step": round(med, 1), "steps": len(steps),
            "warmup_steps": warm, "step_ms": [round(v, 1) for v in steps],
            "threads": torch.get_num_threads(), "cpu_ms_per_step": round(median(cpu), 1),
            "cpu_share": round(median([c / w for c, w in zip(cpu, steps)]), 2),
            "stream_cpu_us_per_step": round(median(cchunks) * 1e6, 1),
            "loss_first": round(loss_first, 4), "loss_last": round(loss_last, 4),
            "stream_us_per_step": round(median(chunks) * 1e6, 1), "stream_calls": calls}


def write(path, results):
    with open(path, "w") as f:  # after every workload, so that partial results survive a timeout
        json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}, f)


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(int(spec.get("threads", 2)))
    p = spec["policy"]
    system = spec.get("system", "pytorch")
    results, ref = [], None
    write(sys.argv[2], results)
    for w in spec["workloads"]:
        base = {"workload": w["name"], "system": system}
        est = None
        if ref is not None:
            est = ref[1] * train_flops(w) / ref[0]
            if est > p["maxEstStepMs"]:
                results.append({**base, "status": "skipped",
                                "note": "skipped: estimated %.0f s/step exceeds the %.0f s limit of this run" % (est / 1e3, p["maxEstStepMs"] / 1e3)})
                write(sys.argv[2], results)
                continue
        try:
            r = run(w, p, est)
        except Exception as e:  # report and go on with the next workload
            results.append({**base, "status": "failed", "note": "failed: %s: %s" % (type(e).__name__, str(e).splitlines()[0][:300])})
            write(sys.argv[2], results)
            continue
        if ref is None:
            ref = (train_flops(w), r["ms_per_step"])
        results.append({**base, "status": "ok", **r})
        write(sys.argv[2], results)
        print("  %s %s: %d tok/s, %.1f us/stream step" % (system, w["name"], r["train_tok_s"], r["stream_us_per_step"]), file=sys.stderr, flush=True)


main()
