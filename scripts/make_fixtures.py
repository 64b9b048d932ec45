"""Generate PyTorch reference fixtures for the recur test suite.

Writes two JSON files (paths relative to the repository root):

  test/fixtures/torch_rnn.json
      Forward outputs and gradients of multi-layer nn.RNN (tanh / relu),
      nn.LSTM and nn.GRU modules, uni- and bidirectional, with and without an
      initial state and with and without per-sample sequence lengths (packed
      sequences, unsorted lengths). Everything is computed in float64.
      Gradients are those of the scalar
          L = sum(y * gy) + sum(hN * ghN) [+ sum(cN * gcN) for LSTM]
      where gy / ghN / gcN are random (seeded) upstream gradients stored
      alongside.

  test/fixtures/torch_charlm.json
      The first 20 training losses of a tiny character language model
      (Embedding -> 1-layer LSTM -> Linear, cross-entropy, Adam with global
      gradient-norm clipping), run once in float64 and once in float32 from the
      same initial parameter values, plus the initial parameters and the data.

Run from the repository root with a Python that has PyTorch installed:

    python3 scripts/make_fixtures.py

The script is fully seeded and single-threaded; rerunning it with the same
PyTorch version reproduces the files byte for byte.
"""

import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "test", "fixtures")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def tensor_json(t):
    """{shape, data} with data flattened in row-major order, full precision."""
    t = t.detach()
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def opt_json(t):
    return None if t is None else tensor_json(t)


# --------------------------------------------------------------------------
# A. RNN / LSTM / GRU forward + backward fixtures
# --------------------------------------------------------------------------

T, B, I, H, NUM_LAYERS = 5, 3, 3, 4, 2
MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]


def make_module(mode, bidirectional, batch_first):
    kw = dict(num_layers=NUM_LAYERS, bidirectional=bidirectional, batch_first=batch_first)
    if mode == "RNN_TANH":
        m = nn.RNN(I, H, nonlinearity="tanh", **kw)
    elif mode == "RNN_RELU":
        m = nn.RNN(I, H, nonlinearity="relu", **kw)
    elif mode == "LSTM":
        m = nn.LSTM(I, H, **kw)
    elif mode == "GRU":
        m = nn.GRU(I, H, **kw)
    else:
        raise ValueError(mode)
    return m.double()


def run_rnn(module, mode, x, h0, c0, lengths, batch_first):
    """Forward pass; returns (y, hN, cN). y is padded with zeros past lengths."""
    is_lstm = mode == "LSTM"
    if h0 is None:
        state = None
    elif is_lstm:
        state = (h0, c0)
    else:
        state = h0
    if lengths is not None:
        packed = pack_padded_sequence(
            x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
        )
        out, st = module(packed, state)
        y, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    else:
        y, st = module(x, state)
    if is_lstm:
        hN, cN = st
    else:
        hN, cN = st, None
    return y, hN, cN


def scalar_loss(y, hN, cN, gy, ghN, gcN):
    L = (y * gy).sum() + (hN * ghN).sum()
    if cN is not None:
        L = L + (cN * gcN).sum()
    return L


def make_rnn_case(index, name, mode, bidirectional, batch_first, lengths, has_initial_state):
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(index)
    module = make_module(mode, bidirectional, batch_first)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.6, 0.6)

    D = 2 if bidirectional else 1
    is_lstm = mode == "LSTM"
    x_shape = [B, T, I] if batch_first else [T, B, I]
    y_shape = [B, T, D * H] if batch_first else [T, B, D * H]
    s_shape = [NUM_LAYERS * D, B, H]

    x = torch.randn(*x_shape, requires_grad=True)
    h0 = c0 = None
    if has_initial_state:
        h0 = torch.randn(*s_shape, requires_grad=True)
        if is_lstm:
            c0 = torch.randn(*s_shape, requires_grad=True)
    gy = torch.randn(*y_shape)
    ghN = torch.randn(*s_shape)
    gcN = torch.randn(*s_shape) if is_lstm else None

    y, hN, cN = run_rnn(module, mode, x, h0, c0, lengths, batch_first)
    L = scalar_loss(y, hN, cN, gy, ghN, gcN)
    L.backward()

    grads = {"x": tensor_json(x.grad)}
    if h0 is not None:
        grads["h0"] = tensor_json(h0.grad)
    if c0 is not None:
        grads["c0"] = tensor_json(c0.grad)
    for pname, p in module.named_parameters():
        grads[pname] = tensor_json(p.grad)

    case = {
        "name": name,
        "mode": mode,
        "inputSize": I,
        "hiddenSize": H,
        "numLayers": NUM_LAYERS,
        "bidirectional": bidirectional,
        "batchFirst": batch_first,
        "lengths": lengths,
        "hasInitialState": has_initial_state,
        "params": {k: tensor_json(v) for k, v in module.state_dict().items()},
        "x": tensor_json(x),
        "h0": opt_json(h0),
        "c0": opt_json(c0),
        "y": tensor_json(y),
        "hN": tensor_json(hN),
        "cN": opt_json(cN),
        "gy": tensor_json(gy),
        "ghN": tensor_json(ghN),
        "gcN": opt_json(gcN),
        "grads": grads,
    }
    check_rnn_case(module, case, x, h0, c0, y, hN, cN, gy, ghN, gcN, grads)
    return case


def check_rnn_case(module, case, x, h0, c0, y, hN, cN, gy, ghN, gcN, grads):
    """Sanity checks on the PyTorch semantics the fixtures rely on."""
    lengths = case["lengths"]
    batch_first = case["batchFirst"]
    D = 2 if case["bidirectional"] else 1
    yt = y.detach() if not batch_first else y.detach().transpose(0, 1)  # [T,B,D*H]
    top = (NUM_LAYERS - 1) * D  # index of last layer's forward direction in hN
    lens = lengths if lengths is not None else [T] * B
    for b, n in enumerate(lens):
        # outputs past a sample's length are exactly zero
        assert torch.all(yt[n:, b] == 0), case["name"]
        # forward final state == output at the sample's last valid step
        assert torch.equal(hN[top, b].detach(), yt[n - 1, b, :H]), case["name"]
        if D == 2:
            # reverse final state == reverse output at t = 0 (the reverse
            # direction starts at the sample's own last valid step)
            assert torch.equal(hN[top + 1, b].detach(), yt[0, b, H:]), case["name"]
        if lengths is not None:
            # inputs past a sample's length receive no gradient
            xg = x.grad if not batch_first else x.grad.transpose(0, 1)
            assert torch.all(xg[n:, b] == 0), case["name"]

    if lengths is not None:
        # gy at padded positions has no influence on any gradient: redo the
        # backward pass with gy zeroed there and require identical gradients.
        mask = torch.zeros_like(yt)
        for b, n in enumerate(lens):
            mask[:n, b] = 1
        if batch_first:
            mask = mask.transpose(0, 1)
        mode = case["mode"]
        module.zero_grad()
        x2 = x.detach().clone().requires_grad_(True)
        h02 = None if h0 is None else h0.detach().clone().requires_grad_(True)
        c02 = None if c0 is None else c0.detach().clone().requires_grad_(True)
        y2, hN2, cN2 = run_rnn(module, mode, x2, h02, c02, lengths, batch_first)
        scalar_loss(y2, hN2, cN2, gy * mask, ghN, gcN).backward()
        assert torch.equal(x2.grad.reshape(-1), torch.tensor(grads["x"]["data"])), case["name"]
        if h02 is not None:
            assert torch.equal(h02.grad.reshape(-1), torch.tensor(grads["h0"]["data"]))
        for pname, p in module.named_parameters():
            assert torch.equal(p.grad.reshape(-1), torch.tensor(grads[pname]["data"])), pname


def make_rnn_fixtures():
    variants = [
        ("noh0", None, False),
        ("h0", None, True),
        ("len_h0", [5, 2, 4], True),  # unsorted on purpose
    ]
    specs = []
    for mode in MODES:
        for bidirectional in [False, True]:
            for vname, lengths, has_h0 in variants:
                name = f"{mode}_{'bi' if bidirectional else 'uni'}_{vname}"
                specs.append((name, mode, bidirectional, False, lengths, has_h0))
    specs.append(("LSTM_bi_batchfirst_len_h0", "LSTM", True, True, [3, 5, 1], True))

    cases = [make_rnn_case(i, *spec) for i, spec in enumerate(specs)]
    return {"generator": "scripts/make_fixtures.py", "torch": torch.__version__, "cases": cases}


# --------------------------------------------------------------------------
# B. Tiny character LM: first 20 training losses
# --------------------------------------------------------------------------

V, E, LM_H, LM_T, LM_B = 12, 8, 16, 10, 4
# Pre-clip gradient norms of this model/data sit around 0.33-0.43, so a
# max_norm of 0.35 clips on most steps but not all (both branches exercised).
LR, MAX_NORM, STEPS = 0.01, 0.35, 20


class CharLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, LM_H, num_layers=1, batch_first=False)
        self.linear = nn.Linear(LM_H, V)

    def forward(self, tokens):  # tokens: [T, B] int64
        h, _ = self.lstm(self.embedding(tokens))
        return self.linear(h)  # [T, B, V]


def make_token_streams():
    """B parallel streams: a fixed period-6 pattern with 10% random noise."""
    g = torch.Generator().manual_seed(1234)
    pattern = torch.tensor([0, 3, 7, 1, 5, 9])
    n = STEPS * LM_T + 1
    streams = []
    for b in range(LM_B):
        idx = (torch.arange(n) + 2 * b) % len(pattern)
        s = pattern[idx].clone()
        noise = torch.rand(n, generator=g) < 0.1
        s[noise] = torch.randint(0, V, (int(noise.sum()),), generator=g)
        streams.append(s)
    data = torch.stack(streams, dim=1)  # [n, B]
    inputs = [data[s * LM_T:(s + 1) * LM_T] for s in range(STEPS)]
    targets = [data[s * LM_T + 1:(s + 1) * LM_T + 1] for s in range(STEPS)]
    return inputs, targets


def train_charlm(init_state, dtype, inputs, targets):
    model = CharLM().to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in init_state.items()})
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses, norms = [], []
    for s in range(STEPS):
        opt.zero_grad()
        logits = model(inputs[s])
        loss = F.cross_entropy(logits.reshape(-1, V), targets[s].reshape(-1))
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=MAX_NORM)
        opt.step()
        losses.append(loss.item())
        norms.append(norm.item())
    return losses, norms


def make_charlm_fixture():
    # Default PyTorch init, seed 0, created in float32 so that the exact same
    # values are representable in both precisions.
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    init_state = {k: v.clone() for k, v in CharLM().state_dict().items()}
    inputs, targets = make_token_streams()

    losses64, norms64 = train_charlm(init_state, torch.float64, inputs, targets)
    losses32, norms32 = train_charlm(init_state, torch.float32, inputs, targets)
    fired = sum(n > MAX_NORM for n in norms64)
    assert 0 < fired < STEPS, "clipping should fire on some steps but not all"
    assert min(abs(n - MAX_NORM) for n in norms64) > 1e-3, "norm too close to max_norm"
    assert [n > MAX_NORM for n in norms64] == [n > MAX_NORM for n in norms32]
    assert losses64[-1] < losses64[0], "loss did not fall"

    return {
        "generator": "scripts/make_fixtures.py",
        "torch": torch.__version__,
        "V": V,
        "E": E,
        "H": LM_H,
        "T": LM_T,
        "B": LM_B,
        "lr": LR,
        "maxNorm": MAX_NORM,
        "params": {k: tensor_json(v.double()) for k, v in init_state.items()},
        "inputs": [x.reshape(-1).tolist() for x in inputs],
        "targets": [y.reshape(-1).tolist() for y in targets],
        "losses64": losses64,
        "losses32": losses32,
        "gradNorms64": norms64,
        "gradNorms32": norms32,
        "clipped64": [n > MAX_NORM for n in norms64],
    }


def write_json(name, obj):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote test/fixtures/{name} ({os.path.getsize(path)} bytes)")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    write_json("torch_rnn.json", make_rnn_fixtures())
    write_json("torch_charlm.json", make_charlm_fixture())


if __name__ == "__main__":
    main()
