#!/usr/bin/python3
"""Make test/fixtures/onnx-corpus: recurrent models as exporters write them, as ONNX test cases.

Run with a Python that has torch (1.13 was used) and onnx (1.12 was used):

    python3 scripts/make_onnx_corpus.py            # writes test/fixtures/onnx-corpus/

Two sources:

* "pytorch": real `torch.onnx.export` output of small nn.Modules built the way PyTorch users build
  them (Embedding or float input -> RNN/LSTM/GRU stack -> a head), across opsets 9 .. the newest the
  installed exporter supports, with dynamic batch and sequence axes. Inputs and expected outputs come
  from PyTorch itself (eval mode).
* "keras-pattern": graphs in the shapes TensorFlow/Keras -> ONNX converters (tf2onnx, keras2onnx)
  produce for SimpleRNN / LSTM / GRU — Transpose around the recurrent node, Squeeze of the direction
  axis, Slice with a negative step for go_backwards, Not/Equal/Where masking, zero initial states
  built from Shape/Gather/Concat/ConstantOfShape or Expand — written with the ONNX helper API (no
  TensorFlow here). Their expected outputs come from the numpy reference below, a transcription of
  the ONNX RNN/GRU/LSTM equations; the corpus test checks them against onnxruntime as well.

Each case is CASE/model.onnx + CASE/test_data_set_N/{input,output}_K.pb. Set 0 uses the shapes the
model was traced with; set 1 (dynamic-axis models only) another batch size and sequence length, so a
runtime that froze the traced shapes fails. manifest.json describes every case (see MANIFEST_DOC).

Everything is seeded, so a rerun writes the same numbers (the .onnx bytes may differ between
exporter versions; the tests never compare bytes).
"""
import json
import os
import shutil
import sys

import numpy as np

np.float = float  # onnx 1.12 still uses the alias numpy removed
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    torch = None

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'onnx-corpus')

MANIFEST_DOC = (
    'One entry per case folder. source: "pytorch" (torch.onnx.export output; expected outputs from '
    'PyTorch) or "keras-pattern" (a Keras->ONNX converter graph shape written with the ONNX helper '
    'API; expected outputs from a numpy transcription of the ONNX equations). pipeline: true when the '
    'graph is embedding-or-float input -> recurrent stack -> head and maps onto a PyTorch module (packed-sequence '
    'cases, with their extra lengths input, are false), '
    'described by layers: kind (RNN_TANH | RNN_RELU | LSTM | GRU, PyTorch mode names), numLayers, '
    'bidirectional, batchFirst, hiddenSize, inputSize (the recurrent input size: the embedding dim '
    'when there is an embedding), embedding ({numEmbeddings, dim} or null), head (see HEADS), '
    'initialState (h0/c0 are graph inputs), dropout (between layers; exported in eval). '
    'inputs/outputs: graph value names in order.'
)

HEADS = {
    'none': 'outputs: output sequence y [B,T,D*H] (or [T,B,D*H]) and h_n (and c_n for LSTM)',
    'linear': 'per-step Linear(D*H -> C) on the output sequence',
    'softmax': 'per-step Linear then softmax over classes',
    'log_softmax': 'per-step Linear then log_softmax over classes',
    'mean': 'mean of the output sequence over time, then Linear',
    'last': 'the last time step of the output sequence, then Linear',
    'final_states': 'concatenation of the last layer\'s final h of each direction [B, D*H], then Linear',
    'packed': 'x and lengths [B] in; pack_padded_sequence -> recurrent stack -> outputs Linear(final h of the last '
              'layer, both directions concatenated) and pad_packed_sequence(y, total_length=T) (0 past each length)',
}

cases = []


def write_case(name, model, datasets, meta):
    """model: onnx ModelProto; datasets: list of (inputs, outputs) lists of numpy arrays."""
    onnx.checker.check_model(model)
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'model.onnx'), 'wb') as f:
        f.write(model.SerializeToString())
    gin = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    gout = [o.name for o in model.graph.output]
    for k, (ins, outs) in enumerate(datasets):
        sd = os.path.join(d, 'test_data_set_%d' % k)
        os.makedirs(sd, exist_ok=True)
        assert len(ins) == len(gin), (name, gin)
        assert len(outs) == len(gout), (name, gout)
        for j, a in enumerate(ins):
            with open(os.path.join(sd, 'input_%d.pb' % j), 'wb') as f:
                f.write(numpy_helper.from_array(np.ascontiguousarray(a), gin[j]).SerializeToString())
        for j, a in enumerate(outs):
            with open(os.path.join(sd, 'output_%d.pb' % j), 'wb') as f:
                f.write(numpy_helper.from_array(np.ascontiguousarray(a), gout[j]).SerializeToString())
    opset = next(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx'))
    entry = {'name': name, 'source': meta.pop('source'), 'opset': opset}
    entry.update(meta)
    entry['inputs'] = gin
    entry['outputs'] = gout
    cases.append(entry)


# ---- PyTorch ---------------------------------------------------------------------------------------

class Net(nn.Module if torch else object):
    def __init__(self, kind, num_layers, bidirectional, batch_first, hidden, inp, embedding, head, dropout, classes=3):
        super().__init__()
        self.kind, self.batch_first, self.head_kind = kind, batch_first, head
        self.emb = nn.Embedding(embedding[0], embedding[1]) if embedding else None
        kw = dict(input_size=inp, hidden_size=hidden, num_layers=num_layers, bidirectional=bidirectional,
                  batch_first=batch_first, dropout=dropout)
        if kind == 'LSTM':
            self.rnn = nn.LSTM(**kw)
        elif kind == 'GRU':
            self.rnn = nn.GRU(**kw)
        else:
            self.rnn = nn.RNN(nonlinearity='tanh' if kind == 'RNN_TANH' else 'relu', **kw)
        D = 2 if bidirectional else 1
        self.D = D
        self.fc = nn.Linear(D * hidden, classes) if head != 'none' else None

    def forward(self, x, *state):
        if self.emb is not None:
            x = self.emb(x)
        if self.head_kind == 'packed':
            lengths = state[0]
            T = x.shape[1] if self.batch_first else x.shape[0]
            p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=self.batch_first, enforce_sorted=self.sorted)
            y, hn = self.rnn(p)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=self.batch_first, total_length=T)
            h = hn[0] if self.kind == 'LSTM' else hn
            feat = torch.cat([h[-2], h[-1]], dim=1) if self.D == 2 else h[-1]
            return self.fc(feat), y
        if state:
            st = (state[0], state[1]) if self.kind == 'LSTM' else state[0]
            y, hn = self.rnn(x, st)
        else:
            y, hn = self.rnn(x)
        h = hn[0] if self.kind == 'LSTM' else hn
        t_axis = 1 if self.batch_first else 0
        if self.head_kind == 'none':
            return (y, hn[0], hn[1]) if self.kind == 'LSTM' else (y, hn)
        if self.head_kind in ('linear', 'softmax', 'log_softmax'):
            z = self.fc(y)
            if self.head_kind == 'softmax':
                z = torch.softmax(z, dim=-1)
            elif self.head_kind == 'log_softmax':
                z = torch.log_softmax(z, dim=-1)
            return z
        if self.head_kind == 'mean':
            return self.fc(y.mean(dim=t_axis))
        if self.head_kind == 'last':
            return self.fc(y.select(t_axis, -1))
        if self.head_kind == 'final_states':
            if self.D == 2:
                return self.fc(torch.cat([h[-2], h[-1]], dim=1))
            return self.fc(h[-1])
        raise ValueError(self.head_kind)


def torch_case(name, kind, opset, num_layers=1, bidirectional=False, batch_first=False, hidden=4, inp=3,
               embedding=None, head='none', initial_state=False, dropout=0.0, dynamic=True, seed=0, sorted_lengths=True):
    torch.manual_seed(seed)
    net = Net(kind, num_layers, bidirectional, batch_first, hidden, inp, embedding, head, dropout).eval()
    net.sorted = sorted_lengths
    packed = head == 'packed'
    D = 2 if bidirectional else 1
    rin = embedding[1] if embedding else inp

    def make_inputs(B, T, s):
        g = torch.Generator().manual_seed(s)
        shape = (B, T) if batch_first else (T, B)
        if embedding:
            x = torch.randint(0, embedding[0], shape, generator=g)
        else:
            x = torch.randn(*shape, inp, generator=g)
        xs = [x]
        if packed:
            # lengths in 1..T with the full length present (total_length = T), sorted when required
            lens = torch.randint(1, T + 1, (B,), generator=g)
            lens[int(torch.randint(0, B, (1,), generator=g))] = T
            xs.append(torch.sort(lens, descending=True).values if sorted_lengths else lens)
        if initial_state:
            xs.append(torch.randn(num_layers * D, B, hidden, generator=g) * 0.5)
            if kind == 'LSTM':
                xs.append(torch.randn(num_layers * D, B, hidden, generator=g) * 0.5)
        return xs

    names_in = ['x'] + (['h0', 'c0'] if kind == 'LSTM' else ['h0'] if initial_state else [])
    names_in = names_in[:1 + (0 if not initial_state else (2 if kind == 'LSTM' else 1))]
    if packed:
        names_in = ['x', 'lengths']
    if packed:
        names_out = ['logits', 'y']
    elif head == 'none':
        names_out = ['y', 'h_n', 'c_n'] if kind == 'LSTM' else ['y', 'h_n']
    else:
        names_out = ['logits']
    dyn = {}
    if dynamic:
        bt = {0: 'batch', 1: 'seq'} if batch_first else {0: 'seq', 1: 'batch'}
        dyn['x'] = bt
        for n in names_in[1:]:
            dyn[n] = {0: 'batch'} if n == 'lengths' else {1: 'batch'}
        for n in names_out:
            if n == 'y' or (n == 'logits' and head in ('linear', 'softmax', 'log_softmax')) and not packed:
                dyn[n] = bt
            elif n in ('h_n', 'c_n'):
                dyn[n] = {1: 'batch'}
            else:
                dyn[n] = {0: 'batch'}
    # Packed sequences are traced at batch 1: torch 1.13 bakes the traced batch into the zero initial
    # state it expands for them (its export warning says as much), and 1 broadcasts to any batch.
    B0 = 1 if packed else 2
    xs0 = make_inputs(B0, 5, seed + 100)
    path = os.path.join('/tmp', 'corpus_%d.onnx' % os.getpid())
    with torch.no_grad():
        torch.onnx.export(net, tuple(xs0), path, opset_version=opset, input_names=names_in, output_names=names_out,
                          dynamic_axes=dyn or None, do_constant_folding=True)
    model = onnx.load(path)
    os.remove(path)
    sets = []
    shapes = [(B0, 5)] + ([(3, 4)] if dynamic else [])
    for k, (B, T) in enumerate(shapes):
        xs = xs0 if k == 0 else make_inputs(B, T, seed + 200 + k)
        with torch.no_grad():
            out = net(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        sets.append(([x.numpy() for x in xs], [o.numpy() for o in outs]))
    write_case(name, model, sets, {
        # Packed cases have a second input (lengths) and two outputs: not the one-input pipeline shape.
        'source': 'pytorch', 'pipeline': not packed, 'dynamicAxes': dynamic,
        'layers': {'kind': kind, 'numLayers': num_layers, 'bidirectional': bidirectional, 'batchFirst': batch_first,
                   'hiddenSize': hidden, 'inputSize': rin,
                   'embedding': {'numEmbeddings': embedding[0], 'dim': embedding[1]} if embedding else None,
                   'head': head, 'initialState': initial_state, 'dropout': dropout,
                   'packed': {'sortedLengths': sorted_lengths} if packed else None},
    })


def pytorch_corpus(max_opset):
    kinds = ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU']
    short = {'RNN_TANH': 'rnn_tanh', 'RNN_RELU': 'rnn_relu', 'LSTM': 'lstm', 'GRU': 'gru'}
    opsets = list(range(9, max_opset + 1))
    n = 0

    def op(i):
        return opsets[i % len(opsets)]

    # 1. Every kind × layers × direction × layout, raw outputs (y, h_n[, c_n]).
    for kind in kinds:
        for layers in (1, 2):
            for bi in (False, True):
                for bf in (False, True):
                    o = op(n)
                    name = 'pt_%s_l%d_%s_%s_op%d' % (short[kind], layers, 'bi' if bi else 'uni', 'bf' if bf else 'tf', o)
                    torch_case(name, kind, o, num_layers=layers, bidirectional=bi, batch_first=bf, seed=n)
                    n += 1
    # 2. Initial states given, three layers, dropout between layers.
    for kind in kinds:
        for bi in (False, True):
            o = op(n)
            torch_case('pt_%s_l3_%s_h0_drop_op%d' % (short[kind], 'bi' if bi else 'uni', o), kind, o, num_layers=3,
                       bidirectional=bi, batch_first=(n % 2 == 0), initial_state=True, dropout=0.25, seed=n)
            n += 1
    # 3. Heads, embedding and float inputs (the pipeline: Embedding -> LSTM -> Linear).
    heads = ['linear', 'softmax', 'log_softmax', 'mean', 'last', 'final_states']
    for kind in kinds:
        for h, head in enumerate(heads):
            emb = (11, 3) if (h + n) % 2 == 0 else None
            bi = h % 3 != 0
            bf = h % 2 == 0
            o = op(n)
            name = 'pt_%s_%s_%s_%s_op%d' % (short[kind], 'emb' if emb else 'float', head, 'bi' if bi else 'uni', o)
            torch_case(name, kind, o, num_layers=1 + (h % 2), bidirectional=bi, batch_first=bf, embedding=emb, head=head,
                       seed=n)
            n += 1
    # 4. The issue's own example, at every opset, plus a static-shape export.
    for o in opsets:
        torch_case('pt_issue_embedding_lstm_linear_op%d' % o, 'LSTM', o, batch_first=True, embedding=(11, 3), head='linear',
                   hidden=5, seed=1000 + o)
    # 5. Packed sequences (pack_padded_sequence / pad_packed_sequence): lengths become sequence_lens;
    #    enforce_sorted=False adds the sort (TopK) and its inverse (ScatterElements).
    for k, kind in enumerate(kinds):
        for srt in (True, False):
            o = [9, 11, 13, 14, 15, 16, 17, max_opset][(2 * k + srt) % 8]
            o = max(o, 11) if not srt else o
            torch_case('pt_%s_packed_%s_op%d' % (short[kind], 'sorted' if srt else 'unsorted', o), kind, o,
                       num_layers=1 + (k % 2), bidirectional=(k + srt) % 2 == 0, batch_first=k < 2, embedding=(11, 3) if k % 2 else None,
                       head='packed', sorted_lengths=srt, seed=3000 + 2 * k + srt)
    torch_case('pt_gru_static_shapes_op%d' % max_opset, 'GRU', max_opset, num_layers=2, bidirectional=True, batch_first=True,
               head='last', dynamic=False, seed=2000)


# ---- Keras converter patterns ----------------------------------------------------------------------

def sig(x):
    return 1 / (1 + np.exp(-x))


def ref_recurrent(op, X, W, R, Bias, H0, C0, direction, seq_lens, lbr=0, acts=None):
    """The ONNX RNN/GRU/LSTM equations (layout 0), float64. X [T,B,I]; returns Y [T,D,B,H], Y_h, Y_c."""
    T, B, _ = X.shape
    D, G, _ = W.shape
    H = R.shape[2]
    Y = np.zeros((T, D, B, H))
    Yh = np.zeros((D, B, H))
    Yc = np.zeros((D, B, H))
    lens = seq_lens if seq_lens is not None else np.full(B, T)
    for d in range(D):
        rev = direction == 'reverse' or (direction == 'bidirectional' and d == 1)
        Wb, Rb = Bias[d, :G], Bias[d, G:]
        for b in range(B):
            h = H0[d, b].copy()
            c = C0[d, b].copy() if C0 is not None else None
            L = int(lens[b])
            steps = range(L - 1, -1, -1) if rev else range(L)
            for t in steps:
                x = X[t, b]
                gx = W[d] @ x + Wb
                gh = R[d] @ h + Rb
                if op == 'RNN':
                    h = (np.tanh if acts != 'Relu' else (lambda v: np.maximum(v, 0)))(gx + gh)
                elif op == 'GRU':
                    z = sig(gx[:H] + gh[:H])
                    r = sig(gx[H:2 * H] + gh[H:2 * H])
                    if lbr:
                        n_ = np.tanh(gx[2 * H:] + r * gh[2 * H:])
                    else:
                        n_ = np.tanh(gx[2 * H:] + R[d, 2 * H:] @ (r * h) + Rb[2 * H:])
                    h = (1 - z) * n_ + z * h
                else:
                    g = gx + gh
                    i, o, f, cc = sig(g[:H]), sig(g[H:2 * H]), sig(g[2 * H:3 * H]), np.tanh(g[3 * H:])
                    c = f * c + i * cc
                    h = o * np.tanh(c)
                Y[t, d, b] = h
            Yh[d, b] = h
            if c is not None:
                Yc[d, b] = c
    return Y, Yh, Yc


def f32(a):
    return np.asarray(a, dtype=np.float32)


def keras_case(name, op, opset, pattern, hidden=4, inp=3, seed=0, classes=3, lbr=1, act='Tanh'):
    """One Keras-converter-shaped graph; `pattern` picks the wrapping. Input x is batch-major [B,T,I]."""
    rng = np.random.default_rng(seed)
    G = {'RNN': 1, 'GRU': 3, 'LSTM': 4}[op] * hidden
    bi = pattern in ('bidirectional',)
    D = 2 if bi else 1
    W = f32(rng.normal(0, 0.5, (D, G, inp)))
    R = f32(rng.normal(0, 0.5, (D, G, hidden)))
    Bias = f32(rng.normal(0, 0.2, (D, 2 * G)))
    Wd = f32(rng.normal(0, 0.5, (D * hidden, classes)))
    bd = f32(rng.normal(0, 0.1, (classes,)))
    nodes, inits = [], [numpy_helper.from_array(W, 'W'), numpy_helper.from_array(R, 'R'), numpy_helper.from_array(Bias, 'B')]

    def const_i64(nm, v):
        inits.append(numpy_helper.from_array(np.array(v, dtype=np.int64), nm))
        return nm

    def axes_node(kind, x, out, axes):
        """Squeeze/Unsqueeze with axes as attribute (< 13) or input (>= 13)."""
        if opset >= 13:
            nodes.append(helper.make_node(kind, [x, const_i64(out + '_axes', axes)], [out]))
        else:
            nodes.append(helper.make_node(kind, [x], [out], axes=axes))

    attrs = {'hidden_size': hidden}
    if op == 'GRU':
        attrs['linear_before_reset'] = lbr
    if op == 'RNN':
        attrs['activations'] = [act] * D
    if bi:
        attrs['direction'] = 'bidirectional'

    x_in = 'x'
    # tf2onnx: time-major for the ONNX node.
    nodes.append(helper.make_node('Transpose', ['x'], ['x_tm'], perm=[1, 0, 2]))
    rec_x = 'x_tm'
    seq_in = ''
    init_h = ''
    if pattern == 'go_backwards':
        # Keras go_backwards=True: the input reversed in time with a step -1 Slice.
        nodes.append(helper.make_node('Slice', ['x_tm', const_i64('rs_starts', [-1]), const_i64('rs_ends', [-(2 ** 62)]),
                                                const_i64('rs_axes', [0]), const_i64('rs_steps', [-1])], ['x_rev']))
        rec_x = 'x_rev'
    if pattern in ('masking', 'masking_where'):
        # Masking(mask_value=0): a step is real when any feature != 0; sequence_lens = Σ_t mask.
        nodes.append(helper.make_node('Equal', ['x', 'zero_f'], ['is_pad_f']))
        inits.append(numpy_helper.from_array(f32(0.0), 'zero_f'))
        nodes.append(helper.make_node('Not', ['is_pad_f'], ['not_pad_f']))
        nodes.append(helper.make_node('Cast', ['not_pad_f'], ['not_pad_num'], to=TensorProto.FLOAT))
        if opset >= 18:
            nodes.append(helper.make_node('ReduceMax', ['not_pad_num', const_i64('rm_axes', [2])], ['step_real'], keepdims=0))
        else:
            nodes.append(helper.make_node('ReduceMax', ['not_pad_num'], ['step_real'], axes=[2], keepdims=0))
        if opset >= 13:
            nodes.append(helper.make_node('ReduceSum', ['step_real', const_i64('rsum_axes', [1])], ['lens_f'], keepdims=0))
        else:
            nodes.append(helper.make_node('ReduceSum', ['step_real'], ['lens_f'], axes=[1], keepdims=0))
        nodes.append(helper.make_node('Cast', ['lens_f'], ['seq_lens'], to=TensorProto.INT32))
        seq_in = 'seq_lens'
    if pattern in ('zero_state_cos', 'zero_state_expand'):
        # Keras' get_initial_state: zeros [1, B, H] from the runtime batch size.
        nodes.append(helper.make_node('Shape', ['x'], ['x_shape']))
        nodes.append(helper.make_node('Gather', ['x_shape', const_i64('idx0', 0)], ['batch'], axis=0))
        axes_node('Unsqueeze', 'batch', 'batch_1', [0])
        nodes.append(helper.make_node('Concat', [const_i64('one', [1]), 'batch_1', const_i64('hid', [hidden])], ['h_shape'], axis=0))
        if pattern == 'zero_state_cos':
            nodes.append(helper.make_node('ConstantOfShape', ['h_shape'], ['h_init'],
                                          value=numpy_helper.from_array(f32([0.0]), 'v')))
        else:
            inits.append(numpy_helper.from_array(f32(0.0), 'zero_scalar'))
            nodes.append(helper.make_node('Expand', ['zero_scalar', 'h_shape'], ['h_init']))
        init_h = 'h_init'
    rec_inputs = [rec_x, 'W', 'R', 'B', seq_in, init_h]
    while rec_inputs and rec_inputs[-1] == '':
        rec_inputs.pop()
    rec_outs = ['Y', 'Y_h'] + (['Y_c'] if op == 'LSTM' else [])
    nodes.append(helper.make_node(op, rec_inputs, rec_outs, **attrs))

    heads = []
    if pattern == 'bidirectional':
        # Bidirectional(merge_mode='concat'), return_sequences=True: [T,2,B,H] -> [B,T,2H].
        nodes.append(helper.make_node('Transpose', ['Y'], ['Y_t'], perm=[2, 0, 1, 3]))
        nodes.append(helper.make_node('Reshape', ['Y_t', const_i64('bi_shape', [0, 0, -1])], ['seq']))
        feat = 'seq'
        # Dense on the last step: a Gather at index -1 of the time axis.
        nodes.append(helper.make_node('Gather', ['seq', const_i64('last', -1)], ['feat'], axis=1))
        feat = 'feat'
    elif pattern in ('return_sequences', 'go_backwards', 'masking_where'):
        axes_node('Squeeze', 'Y', 'Y_sq', [1])
        nodes.append(helper.make_node('Transpose', ['Y_sq'], ['seq'], perm=[1, 0, 2]))
        if pattern == 'masking_where':
            # Keras zeroes masked steps; converters write it as Where(mask, y, 0).
            nodes.append(helper.make_node('Not', ['is_pad_f'], ['keep_f']))
            if opset >= 18:
                nodes.append(helper.make_node('ReduceMax', ['not_pad_num', const_i64('rm2_axes', [2])], ['keep_num'], keepdims=1))
            else:
                nodes.append(helper.make_node('ReduceMax', ['not_pad_num'], ['keep_num'], axes=[2], keepdims=1))
            nodes.append(helper.make_node('Greater', ['keep_num', 'zero_f'], ['keep']))
            nodes.append(helper.make_node('Where', ['keep', 'seq', 'zero_f'], ['seq_masked']))
            heads.append('seq_masked')
        else:
            heads.append('seq')
        # Dense applied per step by MatMul + Add, softmax over classes.
        nodes.append(helper.make_node('MatMul', [heads[-1], 'Wd'], ['dense_mm']))
        nodes.append(helper.make_node('Add', ['dense_mm', 'bd'], ['dense']))
        nodes.append(helper.make_node('Softmax', ['dense'], ['probs'], axis=-1 if opset >= 13 else 2))
        feat = None
    else:
        # return_sequences=False: the final state, direction axis squeezed.
        axes_node('Squeeze', 'Y_h', 'feat', [0])
        feat = 'feat'
    inits += [numpy_helper.from_array(Wd, 'Wd'), numpy_helper.from_array(bd, 'bd')]
    if feat:
        nodes.append(helper.make_node('MatMul', [feat, 'Wd'], ['dense_mm']))
        nodes.append(helper.make_node('Add', ['dense_mm', 'bd'], ['dense']))
        nodes.append(helper.make_node('Softmax', ['dense'], ['probs'], axis=-1 if opset >= 13 else 1))
    outs = ['probs']
    per_step = pattern in ('return_sequences', 'go_backwards', 'masking_where')
    out_shapes = {'probs': ['batch', 'seq', classes] if per_step else ['batch', classes], 'state_c': ['batch', hidden]}
    if op == 'LSTM' and pattern == 'return_state':
        # return_state=True: also the final cell state.
        axes_node('Squeeze', 'Y_c', 'state_c', [0])
        outs.append('state_c')
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(x_in, TensorProto.FLOAT, ['batch', 'seq', inp])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, out_shapes[o]) for o in outs],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)], producer_name='keras-pattern')
    model.ir_version = 8 if opset >= 15 else 7

    def reference(X):
        Xt = X.astype(np.float64).transpose(1, 0, 2)
        lens = None
        if pattern in ('masking', 'masking_where'):
            real = np.any(X != 0, axis=2)
            lens = real.sum(axis=1).astype(np.int64)
        if pattern == 'go_backwards':
            Xt = Xt[::-1]
        B = X.shape[0]
        H0 = np.zeros((D, B, hidden))
        C0 = np.zeros((D, B, hidden)) if op == 'LSTM' else None
        Y, Yh, Yc = ref_recurrent(op, Xt, W.astype(np.float64), R.astype(np.float64), Bias.astype(np.float64), H0, C0,
                                  'bidirectional' if bi else 'forward', lens, lbr=lbr, acts=act)

        def softmax(z):
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if pattern == 'bidirectional':
            seq = Y.transpose(2, 0, 1, 3).reshape(B, X.shape[1], D * hidden)
            res = [softmax(seq[:, -1] @ Wd + bd)]
        elif pattern in ('return_sequences', 'go_backwards', 'masking_where'):
            seq = Y[:, 0].transpose(1, 0, 2)
            if pattern == 'masking_where':
                seq = seq * np.any(X != 0, axis=2)[:, :, None]
            res = [softmax(seq @ Wd + bd)]
        else:
            res = [softmax(Yh[0] @ Wd + bd)]
            if op == 'LSTM' and pattern == 'return_state':
                res.append(Yc[0])
        return [f32(r) for r in res]

    sets = []
    for k, (B, T) in enumerate([(2, 5), (3, 4)]):
        X = f32(rng.normal(0, 1, (B, T, inp)))
        if pattern in ('masking', 'masking_where'):
            # post-padding: row b has its last b steps zeroed (at least one real step stays).
            for b in range(B):
                if b:
                    X[b, T - b:] = 0
        sets.append(([X], reference(X)))
    pipeline = pattern in ('return_state', 'zero_state_cos', 'zero_state_expand') and (op != 'GRU' or lbr == 1)
    kind = op if op != 'RNN' else ('RNN_TANH' if act == 'Tanh' else 'RNN_RELU')
    write_case(name, model, sets, {
        'source': 'keras-pattern', 'pipeline': pipeline, 'dynamicAxes': True, 'pattern': pattern,
        'layers': {'kind': kind, 'numLayers': 1, 'bidirectional': bi, 'batchFirst': True, 'hiddenSize': hidden,
                   'inputSize': inp, 'embedding': None,
                   'head': 'per_step_dense_softmax' if pattern in ('return_sequences', 'go_backwards', 'masking_where')
                   else 'last_step_dense_softmax' if pattern == 'bidirectional' else 'final_state_dense_softmax', 'initialState': False,
                   'dropout': 0.0, 'linearBeforeReset': lbr if op == 'GRU' else None},
    })


def keras_corpus(max_opset):
    patterns = ['return_state', 'return_sequences', 'go_backwards', 'masking', 'masking_where', 'zero_state_cos',
                'zero_state_expand', 'bidirectional']
    n = 0
    for op in ('RNN', 'LSTM', 'GRU'):
        for p in patterns:
            opset = [9, 11, 13, 15, max_opset][n % 5]
            if p == 'go_backwards' and opset < 10:
                opset = 10  # Slice with steps needs opset 10
            if p in ('masking', 'masking_where') and opset < 11:
                opset = 11  # Equal on floats needs opset 11
            lbr = 0 if (op == 'GRU' and p == 'return_sequences') else 1
            act = 'Relu' if (op == 'RNN' and p == 'masking') else 'Tanh'
            keras_case('keras_%s_%s_op%d' % (op.lower(), p, opset), op, opset, p, seed=500 + n, lbr=lbr, act=act)
            n += 1


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    from torch.onnx import _constants
    max_opset = _constants.ONNX_MAX_OPSET
    only = sys.argv[1] if len(sys.argv) > 1 else 'all'
    if only in ('all', 'keras'):
        keras_corpus(max_opset)
    if only in ('all', 'pytorch'):
        pytorch_corpus(max_opset)
    cases.sort(key=lambda c: c['name'])
    with open(os.path.join(ROOT, 'manifest.json'), 'w') as f:
        json.dump({'about': MANIFEST_DOC, 'heads': HEADS, 'generator': 'scripts/make_onnx_corpus.py',
                   'torch': torch.__version__.split('+')[0] if torch else None, 'onnx': onnx.__version__,
                   'cases': cases}, f, indent=1)
        f.write('\n')
    print('%d cases' % len(cases))


if __name__ == '__main__':
    main()
