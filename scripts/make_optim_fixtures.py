"""Generate PyTorch reference fixtures for recur's optimizers, LR schedules and gradient clipping.

Writes test/fixtures/torch_optim.json (path relative to the repository root):

  "problem"    Two float64 parameters, "w" [2, 3] and "b" [3], with initial values, and the
               per-element curvature "a" and centre "c" of the quadratic whose gradient is
               g = a * (p - c). The gradient is assigned directly (p.grad = a * (p - c)) so the
               TypeScript side can compute the very same numbers. On step index `skipStep`
               parameter "b" gets no gradient (grad None), which exercises per-parameter step
               counts (Adam's bias correction, Adagrad's lr decay).

  "optimizers" One case per optimizer configuration: the recur class name and options
               (camelCase), the torch constructor keyword arguments, the learning rate used at
               each step ("lrs", set on the param group before the step), the parameters after
               every step ("trajectory") and the final per-parameter state under recur's buffer
               names ("state": step count and buffers).

  "schedules"  Learning rates from torch.optim.lr_scheduler, read with get_last_lr() right after
               construction and after every scheduler step, each with the equivalent recur
               schedule spec.

  "clip"       clip_grad_norm_ cases: gradients before, the returned total norm, and the gradients
               after, for several norm types and max norms; plus one clip_grad_value_ case.

Everything runs in float64, seeded and single-threaded; rerunning with the same PyTorch version
reproduces the file byte for byte. Run from the repository root with a Python that has PyTorch:

    python3 scripts/make_optim_fixtures.py
"""

import json
import math
import os
import warnings

import torch
from torch.optim import lr_scheduler as L

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "torch_optim.json")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float64)
# SequentialLR steps its schedulers with an explicit epoch internally, which warns in torch 1.13.
warnings.filterwarnings("ignore", message="The epoch parameter")

STEPS = 5
SKIP_STEP = 2  # "b" has grad None on this step index


def flat(t):
    return t.detach().reshape(-1).tolist()


def make_problem():
    g = torch.Generator().manual_seed(1234)
    shapes = {"w": [2, 3], "b": [3]}
    prob = {}
    for name, shape in shapes.items():
        prob[name] = {
            "shape": shape,
            "init": flat(torch.randn(shape, generator=g)),
            "a": flat(torch.rand(shape, generator=g) * 1.5 + 0.5),
            "c": flat(torch.randn(shape, generator=g)),
        }
    return prob


# recur class, recur options, torch class, torch kwargs, lr multipliers per step
CASES = [
    ("sgd_plain", "SGD", {"lr": 0.1}, torch.optim.SGD, {"lr": 0.1}),
    ("sgd_momentum", "SGD", {"lr": 0.1, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ("sgd_momentum_dampening_wd", "SGD", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "weightDecay": 0.05},
     torch.optim.SGD, {"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.05}),
    ("sgd_nesterov_wd", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weightDecay": 0.1},
     torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("sgd_wd_only", "SGD", {"lr": 0.2, "weightDecay": 0.3}, torch.optim.SGD, {"lr": 0.2, "weight_decay": 0.3}),
    ("rmsprop_default", "RMSProp", {}, torch.optim.RMSprop, {}),
    ("rmsprop_momentum_wd", "RMSProp", {"lr": 0.02, "alpha": 0.9, "eps": 1e-6, "weightDecay": 0.1, "momentum": 0.5},
     torch.optim.RMSprop, {"lr": 0.02, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1, "momentum": 0.5}),
    ("rmsprop_centered_momentum", "RMSProp", {"lr": 0.01, "centered": True, "momentum": 0.9},
     torch.optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.9}),
    ("rmsprop_centered_wd", "RMSProp", {"lr": 0.03, "alpha": 0.8, "centered": True, "weightDecay": 0.05},
     torch.optim.RMSprop, {"lr": 0.03, "alpha": 0.8, "centered": True, "weight_decay": 0.05}),
    ("adagrad_default", "Adagrad", {}, torch.optim.Adagrad, {}),
    ("adagrad_all", "Adagrad", {"lr": 0.1, "lrDecay": 0.05, "weightDecay": 0.1, "initialAccumulatorValue": 0.5, "eps": 1e-8},
     torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-8}),
    ("adam_default", "Adam", {}, torch.optim.Adam, {}),
    ("adam_wd", "Adam", {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weightDecay": 0.1},
     torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("adamw_default", "AdamW", {}, torch.optim.AdamW, {}),
    ("adamw_wd", "AdamW", {"lr": 0.05, "betas": [0.85, 0.995], "weightDecay": 0.2},
     torch.optim.AdamW, {"lr": 0.05, "betas": (0.85, 0.995), "weight_decay": 0.2}),
]

# Cases whose learning rate is changed between steps (as a schedule would).
LR_CHANGES = {"sgd_momentum": [1, 1, 0.5, 0.5, 0.25], "rmsprop_momentum_wd": [1, 0.5, 0.5, 0.1, 0.1],
              "adagrad_all": [1, 1, 0.3, 0.3, 0.3], "adam_wd": [1, 0.5, 0.25, 0.25, 2], "adamw_wd": [1, 1, 0.5, 0.5, 0.1]}

STATE_NAMES = {"momentum_buffer": "momentumBuffer", "square_avg": "squareAvg", "grad_avg": "gradAvg",
               "sum": "sum", "exp_avg": "expAvg", "exp_avg_sq": "expAvgSq"}


def run_case(prob, name, cls, opts, tcls, tkw):
    params = {k: torch.tensor(v["init"]).reshape(v["shape"]).requires_grad_() for k, v in prob.items()}
    a = {k: torch.tensor(v["a"]).reshape(v["shape"]) for k, v in prob.items()}
    c = {k: torch.tensor(v["c"]).reshape(v["shape"]) for k, v in prob.items()}
    opt = tcls(list(params.values()), foreach=False, **tkw)
    base = opt.param_groups[0]["lr"]
    mults = LR_CHANGES.get(name, [1] * STEPS)
    lrs, traj = [], []
    for s in range(STEPS):
        lr = base * mults[s]
        opt.param_groups[0]["lr"] = lr
        lrs.append(lr)
        for k, p in params.items():
            if k == "b" and s == SKIP_STEP:
                p.grad = None
            else:
                with torch.no_grad():
                    p.grad = a[k] * (p - c[k])
        opt.step()
        traj.append({k: flat(p) for k, p in params.items()})
    state = {}
    for k, p in params.items():
        st = opt.state.get(p, {})
        step = st.get("step", None)
        if step is None:
            # SGD keeps no step count: count the updates this parameter received.
            step = STEPS - (1 if k == "b" else 0)
        buffers = {}
        for tname, rname in STATE_NAMES.items():
            v = st.get(tname)
            if v is not None:
                buffers[rname] = flat(v)
        state[k] = {"step": int(step), "buffers": buffers}
    return {"name": name, "type": cls, "options": opts, "torch": {"class": tcls.__name__, "kwargs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in tkw.items()}},
            "lrs": lrs, "trajectory": traj, "state": state}


def lr_trace(make, steps, base=0.1):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    sched = make(opt)
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def make_schedules():
    cases = []

    def add(name, spec, make, steps):
        cases.append({"name": name, "baseLr": 0.1, "spec": spec, "lrs": lr_trace(make, steps)})

    add("step", {"type": "StepLR", "stepSize": 3, "gamma": 0.5}, lambda o: L.StepLR(o, step_size=3, gamma=0.5), 12)
    add("exponential", {"type": "ExponentialLR", "gamma": 0.9}, lambda o: L.ExponentialLR(o, gamma=0.9), 12)
    add("cosine", {"type": "CosineAnnealingLR", "tMax": 10, "etaMin": 0.001},
        lambda o: L.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 10)
    add("cosine_default_etamin", {"type": "CosineAnnealingLR", "tMax": 7, "etaMin": 0},
        lambda o: L.CosineAnnealingLR(o, T_max=7), 7)
    # LinearWarmup(W) == LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1)
    add("warmup_only", {"type": "LinearWarmup", "warmupSteps": 4, "then": None},
        lambda o: L.LinearLR(o, start_factor=1 / 4, end_factor=1.0, total_iters=3), 8)
    # LinearWarmup(W, then) == SequentialLR([LinearLR(1/W, 1, W-1), then], milestones=[W])
    add("warmup_cosine", {"type": "LinearWarmup", "warmupSteps": 4, "then": {"type": "CosineAnnealingLR", "tMax": 6, "etaMin": 0.0}},
        lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=1 / 4, end_factor=1.0, total_iters=3), L.CosineAnnealingLR(o, T_max=6)], milestones=[4]), 10)
    add("warmup_step", {"type": "LinearWarmup", "warmupSteps": 3, "then": {"type": "StepLR", "stepSize": 2, "gamma": 0.5}},
        lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=1 / 3, end_factor=1.0, total_iters=2), L.StepLR(o, step_size=2, gamma=0.5)], milestones=[3]), 9)
    return cases


def make_clip():
    g = torch.Generator().manual_seed(99)
    grads = {"w": torch.randn(2, 3, generator=g), "b": torch.randn(4, generator=g) * 3}
    cases = []
    for norm_type in [2.0, 1.0, 3.0, math.inf]:
        for max_norm in [0.5, 100.0]:
            ps = {k: torch.zeros_like(v, requires_grad=True) for k, v in grads.items()}
            for k, p in ps.items():
                p.grad = grads[k].clone()
            total = torch.nn.utils.clip_grad_norm_(list(ps.values()), max_norm=max_norm, norm_type=norm_type)
            cases.append({"normType": "inf" if math.isinf(norm_type) else norm_type, "maxNorm": max_norm,
                          "total": float(total), "after": {k: flat(p.grad) for k, p in ps.items()}})
    ps = {k: torch.zeros_like(v, requires_grad=True) for k, v in grads.items()}
    for k, p in ps.items():
        p.grad = grads[k].clone()
    torch.nn.utils.clip_grad_value_(list(ps.values()), clip_value=0.75)
    value_case = {"clipValue": 0.75, "after": {k: flat(p.grad) for k, p in ps.items()}}
    return {"grads": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in grads.items()},
            "norm": cases, "value": value_case}


def main():
    prob = make_problem()
    optimizers = [run_case(prob, *case) for case in CASES]
    obj = {
        "generator": "scripts/make_optim_fixtures.py",
        "torch": torch.__version__,
        "steps": STEPS,
        "skipStep": SKIP_STEP,
        "problem": prob,
        "optimizers": optimizers,
        "schedules": make_schedules(),
        "clip": make_clip(),
    }
    with open(OUT, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(optimizers)} optimizer cases, "
          f"{len(obj['schedules'])} schedules, {len(obj['clip']['norm'])} clip cases")


if __name__ == "__main__":
    main()
