"""Keras layers-model fixtures that TensorFlow.js cannot make (see make_keras_fixtures.mjs for the rest).

TF.js cannot build or load GRU with reset_after=True (the Keras 2.3+ / Keras 3 default), so these
model.json files are written by hand, following the Keras documentation of the layer weights:
  kernel           [input_dim, 3*units]  gate blocks z, r, h
  recurrent_kernel [units, 3*units]      gate blocks z, r, h
  bias             [2, 3*units]          row 0 input bias, row 1 recurrent bias (reset_after=True)
  LSTM: kernel [input_dim, 4*units], recurrent_kernel [units, 4*units], bias [4*units], blocks i, f, c, o
The weights are seeded float32 values; the expected outputs are computed in float64 by an
independent reference:
  * GRU reset_after=True: PyTorch's nn.GRU (which computes exactly the Keras reset_after=True
    equations once the gate blocks are reordered z, r, h -> r, z, n and the matrices transposed);
  * LSTM with recurrent_activation='hard_sigmoid' under Keras 3: the Keras 3 equations written out
    with torch float64 ops, hard_sigmoid(x) = relu6(x + 3) / 6.

    /usr/bin/python3 scripts/make_keras_fixtures.py      (from the repository root)
"""
import json
import os
import struct

import torch

ROOT = os.path.join("test", "fixtures", "keras")
torch.set_default_dtype(torch.float64)


def rand32(gen, *shape):
    """uniform(-0.5, 0.5), rounded to float32, kept as float64 tensors."""
    return (torch.rand(*shape, generator=gen) - 0.5).float().double()


def write_case(name, topology, weights, x, y, source):
    """weights: list of (name, tensor) in manifest order."""
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    blob = b"".join(struct.pack("<%df" % t.numel(), *t.flatten().tolist()) for _, t in weights)
    with open(os.path.join(d, "group1-shard1of1.bin"), "wb") as f:
        f.write(blob)
    model = {
        "format": "layers-model",
        "generatedBy": "hand-written by scripts/make_keras_fixtures.py",
        "convertedBy": None,
        "modelTopology": topology,
        "weightsManifest": [{
            "paths": ["group1-shard1of1.bin"],
            "weights": [{"name": n, "shape": list(t.shape), "dtype": "float32"} for n, t in weights],
        }],
    }
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(model, f, indent=1)
        f.write("\n")
    io = {
        "source": source,
        "input": {"shape": list(x.shape), "data": x.flatten().tolist()},
        "output": {"shape": list(y.shape), "data": y.flatten().tolist()},
    }
    with open(os.path.join(d, "io.json"), "w") as f:
        json.dump(io, f)
        f.write("\n")
    print(name, list(y.shape))


def keras2_seq(name, layers, version="2.15.0"):
    return {"class_name": "Sequential", "config": {"name": name, "layers": layers}, "keras_version": version, "backend": "tensorflow"}


def gru_cfg(name, units, return_sequences, go_backwards=False, use_bias=True, batch_input_shape=None):
    c = {"name": name, "trainable": True, "units": units, "activation": "tanh", "recurrent_activation": "sigmoid",
         "use_bias": use_bias, "dropout": 0.0, "recurrent_dropout": 0.0, "reset_after": True,
         "return_sequences": return_sequences, "return_state": False, "go_backwards": go_backwards,
         "stateful": False, "unroll": False, "time_major": False}
    if batch_input_shape is not None:
        c["batch_input_shape"] = batch_input_shape
    return {"class_name": "GRU", "config": c}


def dense_cfg(name, units, activation):
    return {"class_name": "Dense", "config": {"name": name, "trainable": True, "units": units, "activation": activation, "use_bias": True}}


def keras_gru_weights(gen, I, H, use_bias=True):
    K = rand32(gen, I, 3 * H)
    R = rand32(gen, H, 3 * H)
    b = rand32(gen, 2, 3 * H) if use_bias else None
    return K, R, b


def torch_gru(K, R, b, H, bidirectional=False, back=None):
    """An nn.GRU holding Keras GRU weights (reset_after=True); back = the backward direction's."""
    I = K.shape[0]
    g = torch.nn.GRU(I, H, batch_first=True, bias=b is not None, bidirectional=bidirectional)
    order = [1, 0, 2]  # torch r, z, n <- keras z, r, h

    def reorder(m):  # [rows, 3H] keras -> [3H, rows] torch
        return torch.cat([m[:, k * H:(k + 1) * H] for k in order], dim=1).t().contiguous()

    def reorder_b(v):
        return torch.cat([v[k * H:(k + 1) * H] for k in order])

    with torch.no_grad():
        for sfx, (k, r, bb) in [("", (K, R, b))] + ([("_reverse", back)] if bidirectional else []):
            getattr(g, "weight_ih_l0" + sfx).copy_(reorder(k))
            getattr(g, "weight_hh_l0" + sfx).copy_(reorder(r))
            if bb is not None:
                getattr(g, "bias_ih_l0" + sfx).copy_(reorder_b(bb[0]))
                getattr(g, "bias_hh_l0" + sfx).copy_(reorder_b(bb[1]))
    return g


def dense(x, K, b, activation):
    y = x @ K + b
    if activation == "softmax":
        return torch.softmax(y, dim=-1)
    if activation == "tanh":
        return torch.tanh(y)
    return y


def case_gru_seq():
    gen = torch.Generator().manual_seed(11)
    I, H, B, T = 3, 4, 2, 5
    K, R, b = keras_gru_weights(gen, I, H)
    DK, Db = rand32(gen, H, 2), rand32(gen, 2)
    x = (2 * torch.rand(B, T, I, generator=gen) - 1).float().double()
    with torch.no_grad():
        y, _ = torch_gru(K, R, b, H)(x)
        y = dense(y, DK, Db, "linear")
    topo = keras2_seq("gru_seq", [gru_cfg("gru", H, True, batch_input_shape=[None, T, I]), dense_cfg("dense", 2, "linear")])
    w = [("gru/gru_cell/kernel", K), ("gru/gru_cell/recurrent_kernel", R), ("gru/gru_cell/bias", b), ("dense/kernel", DK), ("dense/bias", Db)]
    write_case("gru_reset_after_seq", topo, w, x, y, f"PyTorch {torch.__version__} nn.GRU (float64) + x@K+b")


def case_gru_backwards_nobias():
    gen = torch.Generator().manual_seed(12)
    I, H, B, T = 2, 3, 3, 4
    K, R, _ = keras_gru_weights(gen, I, H, use_bias=False)
    x = (2 * torch.rand(B, T, I, generator=gen) - 1).float().double()
    with torch.no_grad():
        # go_backwards: Keras reads the sequence last step first and returns the outputs in that order
        y, _ = torch_gru(K, R, None, H)(torch.flip(x, [1]))
    topo = keras2_seq("gru_back", [gru_cfg("gru_1", H, True, go_backwards=True, use_bias=False, batch_input_shape=[None, T, I])])
    w = [("gru_1/gru_cell/kernel", K), ("gru_1/gru_cell/recurrent_kernel", R)]
    write_case("gru_reset_after_backwards_nobias", topo, w, x, y, f"PyTorch {torch.__version__} nn.GRU (float64) on the time-reversed input")


def case_bigru_keras3():
    gen = torch.Generator().manual_seed(13)
    I, H, B, T = 2, 3, 2, 6
    fw = keras_gru_weights(gen, I, H)
    bw = keras_gru_weights(gen, I, H)
    DK, Db = rand32(gen, 2 * H, 2), rand32(gen, 2)
    x = (2 * torch.rand(B, T, I, generator=gen) - 1).float().double()
    with torch.no_grad():
        _, hn = torch_gru(*fw, H, bidirectional=True, back=bw)(x)
        y = dense(torch.cat([hn[0], hn[1]], dim=1), DK, Db, "softmax")
    # Keras 3 style: an InputLayer with batch_shape, layer configs with a module/registered_name
    inner = gru_cfg("gru", H, False)
    inner["module"] = "keras.layers"
    inner["registered_name"] = None
    layers = [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, T, I], "dtype": "float32", "sparse": False, "name": "input_layer"}, "registered_name": None},
        {"module": "keras.layers", "class_name": "Bidirectional", "config": {"name": "bidirectional", "trainable": True, "merge_mode": "concat", "layer": inner}, "registered_name": None},
        dense_cfg("dense", 2, "softmax"),
    ]
    topo = keras2_seq("bigru_keras3", layers, version="3.3.3")
    w = []
    for d, (k, r, b) in [("forward_gru", fw), ("backward_gru", bw)]:
        w += [(f"bidirectional/{d}/gru_cell/kernel", k), (f"bidirectional/{d}/gru_cell/recurrent_kernel", r), (f"bidirectional/{d}/gru_cell/bias", b)]
    w += [("dense/kernel", DK), ("dense/bias", Db)]
    write_case("bigru_reset_after_keras3_last", topo, w, x, y, f"PyTorch {torch.__version__} nn.GRU(bidirectional) final states (float64) + softmax(h@K+b)")


def case_lstm_hard_sigmoid_keras3():
    gen = torch.Generator().manual_seed(14)
    I, H, B, T = 3, 3, 2, 5
    K, R, b = rand32(gen, I, 4 * H) * 4, rand32(gen, H, 4 * H) * 4, rand32(gen, 4 * H) * 2  # big enough to hit both clip ends
    x = (2 * torch.rand(B, T, I, generator=gen) - 1).float().double()

    def hard_sigmoid(v):  # Keras 3: relu6(x + 3) / 6
        return torch.clamp(v + 3, 0, 6) / 6

    h = torch.zeros(B, H)
    c = torch.zeros(B, H)
    ys = []
    for t in range(T):
        zz = x[:, t] @ K + h @ R + b
        i, f, cc, o = zz[:, :H], zz[:, H:2 * H], zz[:, 2 * H:3 * H], zz[:, 3 * H:]
        c = hard_sigmoid(f) * c + hard_sigmoid(i) * torch.tanh(cc)
        h = hard_sigmoid(o) * torch.tanh(c)
        ys.append(h)
    y = torch.stack(ys, dim=1)
    layers = [{"class_name": "LSTM", "config": {
        "name": "lstm", "units": H, "activation": "tanh", "recurrent_activation": "hard_sigmoid", "use_bias": True,
        "unit_forget_bias": True, "return_sequences": True, "return_state": False, "go_backwards": False, "stateful": False,
        "unroll": False, "dropout": 0.0, "recurrent_dropout": 0.0, "batch_input_shape": [None, T, I]}}]
    topo = keras2_seq("lstm_hs3", layers, version="3.3.3")
    w = [("lstm/lstm_cell/kernel", K.float().double()), ("lstm/lstm_cell/recurrent_kernel", R.float().double()), ("lstm/lstm_cell/bias", b.float().double())]
    write_case("lstm_hard_sigmoid_keras3_seq", topo, w, x, y, "float64 Keras 3 LSTM equations (torch ops), hard_sigmoid = relu6(x+3)/6")


if __name__ == "__main__":
    case_gru_seq()
    case_gru_backwards_nobias()
    case_bigru_keras3()
    case_lstm_hard_sigmoid_keras3()
