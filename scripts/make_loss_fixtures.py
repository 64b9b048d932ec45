"""Generate PyTorch reference fixtures for recur's cross-entropy options.

Writes test/fixtures/torch_losses.json (path relative to the repository root): for each case the
float64 logits [rows, V], the targets, the options under recur's names (labelSmoothing,
ignoreIndex, reduction) and torch.nn.functional.cross_entropy's loss and its gradient with respect
to the logits (for reduction 'none', of the sum of the per-row losses). Everything is seeded,
float64 and single-threaded; rerunning with the same PyTorch reproduces the file. Run from the
repository root with a Python that has PyTorch:

    python3 scripts/make_loss_fixtures.py
"""

import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "torch_losses.json")

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)


def case(g, rows, V, targets, smoothing, reduction, ignore_index=-100):
    x = (torch.rand(rows, V, generator=g) * 6 - 3).requires_grad_(True)
    t = torch.tensor(targets)
    loss = F.cross_entropy(x, t, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    (loss if reduction != "none" else loss.sum()).backward()
    return {
        "logits": x.detach().reshape(-1).tolist(),
        "shape": [rows, V],
        "targets": targets,
        "options": {"labelSmoothing": smoothing, "ignoreIndex": ignore_index, "reduction": reduction},
        "loss": loss.detach().reshape(-1).tolist(),
        "grad": x.grad.reshape(-1).tolist(),
    }


def main():
    g = torch.Generator().manual_seed(2026)
    cases = []
    for smoothing in [0.0, 0.1, 0.35]:
        for reduction in ["mean", "sum", "none"]:
            cases.append(case(g, 5, 7, [0, 6, 3, -100, 2], smoothing, reduction))
    cases.append(case(g, 4, 3, [1, 2, 2, 0], 0.2, "mean", ignore_index=2))
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "crossEntropy": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote test/fixtures/torch_losses.json ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
