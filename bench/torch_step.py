"""
The PyTorch reference for the neural-network benchmark: one SGD step (forward, cross-entropy, backward,
parameter update) of a network built from the same layer list src/models/nn/arch.ts gives our models.

A line protocol, so that bench/torch.ts can interleave these steps with ours and both sides see the
same load on a shared machine. Reads one JSON line on stdin:
  {"layers": [...], "input": [h, w, c], "nClasses": C, "batch": B, "threads": n | null, "lr": 0.01}
and answers {"torch": version, "threads": threads used, "params": total, "sizes": element count of each
parameter in our flat order}; then for every line "step" on stdin runs one step and answers
{"ms": wall-clock ms, "cpuMs": CPU ms of the process, all threads}. Ends at end of input.

Run with Debian's python3 (/usr/bin/python3, python3-torch); scripts/install-bench-deps.sh installs it.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def block_parts(block, in_channels):
    """The main path and shortcut of a BasicBlock, as src/models/nn/arch.ts blockParts builds them."""
    name, out, stride = block["name"], block["out"], block["stride"]
    main = [
        {"op": "conv", "name": f"{name}.conv1", "k": 3, "out": out, "stride": stride, "bias": False},
        {"op": "bn", "name": f"{name}.bn1"},
        {"op": "relu"},
        {"op": "conv", "name": f"{name}.conv2", "k": 3, "out": out, "stride": 1, "bias": False},
        {"op": "bn", "name": f"{name}.bn2"},
    ]
    shortcut = []
    if stride != 1 or in_channels != out:
        shortcut = [
            {"op": "conv", "name": f"{name}.shortcut.conv", "k": 1, "out": out, "stride": stride, "bias": False},
            {"op": "bn", "name": f"{name}.shortcut.bn"},
        ]
    return main, shortcut


class Flatten(nn.Module):
    """Flattens in NHWC order, as ours does, so the dense layer after it sees the same feature order."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1)


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class Block(nn.Module):
    def __init__(self, main, shortcut):
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x):
        return F.relu(self.main(x) + self.shortcut(x))


def build(layers, shape, params):
    """nn.Sequential for `layers` on activations of `shape` ([c, h, w] or [features]); appends each
    parameter to `params` in our flat order (conv weight, conv bias, bn gamma, bn beta, dense weight, bias)."""
    mods = []
    for l in layers:
        op = l["op"]
        if op == "conv":
            c, h, w = shape
            k, s = l["k"], l["stride"]
            m = nn.Conv2d(c, l["out"], k, stride=s, padding=k // 2, bias=l["bias"])
            params += [m.weight] + ([m.bias] if l["bias"] else [])
            shape = [l["out"], (h + 2 * (k // 2) - k) // s + 1, (w + 2 * (k // 2) - k) // s + 1]
        elif op == "bn":
            # training mode: normalises with the batch's statistics, as ours always does
            m = nn.BatchNorm2d(shape[0], eps=1e-5)
            params += [m.weight, m.bias]
        elif op == "relu":
            m = nn.ReLU()
        elif op == "maxpool":
            m = nn.MaxPool2d(2, 2)
            shape = [shape[0], shape[1] // 2, shape[2] // 2]
        elif op == "gap":
            m = GlobalAvgPool()
            shape = [shape[0]]
        elif op == "flatten":
            m = Flatten()
            shape = [shape[0] * shape[1] * shape[2]]
        elif op == "dense":
            m = nn.Linear(shape[0], l["out"])
            params += [m.weight, m.bias]
            shape = [l["out"]]
        elif op == "block":
            main_layers, short_layers = block_parts(l, shape[0])
            main, out_shape = build(main_layers, shape, params)
            shortcut, _ = build(short_layers, shape, params)
            m = Block(main, shortcut)
            shape = out_shape
        else:
            raise ValueError(f"unknown layer op {op!r}")
        mods.append(m)
    return nn.Sequential(*mods), shape


def main():
    cfg = json.loads(sys.stdin.readline())
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    torch.manual_seed(0)
    h, w, c = cfg["input"]
    params = []
    model, out = build(cfg["layers"], [c, h, w], params)
    if out != [cfg["nClasses"]]:
        raise ValueError(f"the network ends in shape {out}, not [{cfg['nClasses']}]")
    model.train()
    batch = cfg["batch"]
    # random data of the shape ours sees (NHWC there, NCHW here)
    x = torch.randn(batch, c, h, w)
    y = torch.randint(0, cfg["nClasses"], (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.get("lr", 0.01))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    sizes = [p.numel() for p in params]
    reply({"torch": torch.__version__, "threads": torch.get_num_threads(), "params": sum(sizes), "sizes": sizes})
    for line in sys.stdin:
        if line.strip() != "step":
            raise ValueError(f"unknown command {line.strip()!r}")
        t, c = time.perf_counter(), time.process_time()
        step()
        reply({"ms": (time.perf_counter() - t) * 1000, "cpuMs": (time.process_time() - c) * 1000})


def reply(obj):
    print(json.dumps(obj), flush=True)


if __name__ == "__main__":
    main()
