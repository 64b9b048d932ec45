#!/usr/bin/env python3
"""Extra ONNX node test cases for recur's RNN/GRU/LSTM importer (test/fixtures/onnx/).

The ONNX project's own cases (shared/conformance/onnx-node) use small constant weights and leave
some paths untested: GRU with linear_before_reset = 1 (the form recur's fused GRU runs), random
weights, initial states together with layout = 1, peepholes with initial states, and the opset-7
form of the operators. These cases fill that gap with the SAME reference: the numpy helpers in
the onnx package's backend test generators (onnx.backend.test.case.node.{rnn,gru,lstm}), and
every model passes onnx.checker.

Run with Debian's python3-onnx (ONNX 1.12):  /usr/bin/python3 scripts/make_onnx_fixtures.py
Output: test/fixtures/onnx/<case>/model.onnx and test_data_set_0/{input,output}_N.pb, in the
layout of the ONNX backend test suite (run them with `recur onnx test test/fixtures/onnx`).
"""
import os
import shutil

import numpy as np

# ONNX 1.12 still refers to the aliases numpy removed in 1.24.
import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for _name, _t in (("float", float), ("int", int), ("bool", bool), ("object", object)):
        if not hasattr(np, _name):
            setattr(np, _name, _t)

import onnx  # noqa: E402
from onnx import checker, helper, numpy_helper, TensorProto  # noqa: E402
from onnx.backend.test.case.node.gru import GRU_Helper  # noqa: E402
from onnx.backend.test.case.node.lstm import LSTM_Helper  # noqa: E402
from onnx.backend.test.case.node.rnn import RNN_Helper  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "onnx")
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
HELPERS = {"RNN": RNN_Helper, "GRU": GRU_Helper, "LSTM": LSTM_Helper}


def write_case(name, op, opset, T, N, I, H, layout=0, with_b=True, with_h0=False, with_c0=False, with_p=False, attrs=None, seed=0):
    rng = np.random.RandomState(seed)
    G = GATES[op]
    f32 = lambda *shape, scale=1.0: (rng.uniform(-1, 1, size=shape) * scale).astype(np.float32)  # noqa: E731
    X = f32(*((N, T, I) if layout else (T, N, I)), scale=2.0)
    W = f32(1, G * H, I)
    R = f32(1, G * H, H)
    feeds = [("X", X), ("W", W), ("R", R)]
    node_inputs = ["X", "W", "R"]
    helper_args = {"X": X, "W": W, "R": R}
    if layout:
        helper_args["layout"] = layout
    if (attrs or {}).get("linear_before_reset"):
        helper_args["linear_before_reset"] = attrs["linear_before_reset"]
    if with_b:
        B = f32(1, 2 * G * H)
        feeds.append(("B", B))
        helper_args["B"] = B
    node_inputs.append("B" if with_b else "")
    node_inputs.append("")  # sequence_lens
    for flag, key in ((with_h0, "initial_h"), (with_c0, "initial_c")):
        if op != "LSTM" and key == "initial_c":
            continue
        if flag:
            state = f32(1, N, H)  # [num_directions, batch, hidden] — what the helper expects
            feeds.append((key, np.ascontiguousarray(np.swapaxes(state, 0, 1)) if layout else state))
            helper_args[key] = state
        node_inputs.append(key if flag else "")
    if op == "LSTM":
        if with_p:
            P = f32(1, 3 * H)
            feeds.append(("P", P))
            helper_args["P"] = P
        node_inputs.append("P" if with_p else "")
    while node_inputs and node_inputs[-1] == "":
        node_inputs.pop()

    Y, Y_h = HELPERS[op](**helper_args).step()
    if layout:
        # ONNX 1.12's helpers take Y_h from the wrong axis in layout 1 (Y[:, :, -1] of the
        # [batch, seq, dir, hidden] Y, which is right only when seq_length = 1, the only case
        # the ONNX suite generates). The last step of a forward pass is Y[:, -1]: [batch, dir, hidden].
        Y_h = Y[:, -1]
    Y = Y.astype(np.float32)
    Y_h = Y_h.astype(np.float32)

    node_attrs = {"hidden_size": H}
    if layout:
        node_attrs["layout"] = layout
    node_attrs.update(attrs or {})
    node = helper.make_node(op, inputs=node_inputs, outputs=["Y", "Y_h"], **node_attrs)
    graph = helper.make_graph(
        [node],
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape)) for n, v in feeds],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, list(Y.shape)),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, list(Y_h.shape))],
    )
    model = helper.make_model(graph, producer_name="recur-fixtures", opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset >= 14 else 3
    checker.check_model(model, full_check=True)

    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for i, (n, v) in enumerate(feeds):
        with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as fh:
            fh.write(numpy_helper.from_array(v, n).SerializeToString())
    for i, (n, v) in enumerate((("Y", Y), ("Y_h", Y_h))):
        with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as fh:
            fh.write(numpy_helper.from_array(v, n).SerializeToString())
    print("wrote", name)


def main():
    os.makedirs(OUT, exist_ok=True)
    write_case("test_gru_lbr1_initial_h_random", "GRU", 14, T=4, N=3, I=5, H=6, with_h0=True, attrs={"linear_before_reset": 1}, seed=1)
    write_case("test_gru_lbr1_batchwise_initial_h", "GRU", 14, T=5, N=2, I=3, H=4, layout=1, with_h0=True, attrs={"linear_before_reset": 1}, seed=2)
    write_case("test_gru_opset7_random", "GRU", 7, T=3, N=2, I=4, H=5, with_h0=True, seed=3)
    write_case("test_gru_lbr1_no_bias", "GRU", 14, T=4, N=2, I=3, H=3, with_b=False, attrs={"linear_before_reset": 1}, seed=4)
    write_case("test_lstm_peepholes_initial_random", "LSTM", 7, T=4, N=3, I=5, H=4, with_h0=True, with_c0=True, with_p=True, seed=5)
    write_case("test_lstm_batchwise_initial_random", "LSTM", 14, T=5, N=3, I=2, H=4, layout=1, with_h0=True, with_c0=True, seed=6)
    write_case("test_lstm_random_no_bias", "LSTM", 14, T=6, N=2, I=3, H=5, with_b=False, seed=7)
    write_case("test_rnn_initial_random", "RNN", 7, T=5, N=3, I=4, H=6, with_h0=True, seed=8)
    write_case("test_rnn_batchwise_initial_random", "RNN", 14, T=3, N=4, I=2, H=3, layout=1, with_h0=True, seed=9)


if __name__ == "__main__":
    main()
