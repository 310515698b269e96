"""
The PyTorch reference of the gradient checks (gradcheck.test.ts): the loss and gradient in float64 of a
network built by bench/torch_step.py from our layer list (src/models/nn/arch.ts), at our parameters.

Reads one JSON line on stdin: {"layers": [...], "input": [h, w, c], "nClasses": C, "dir": D}, where D holds
params.f32 (our flat vector), images.f32 (n NHWC images) and labels.i32. Writes D/grad.f64 (the gradient
in our flat order and layouts) and prints {"loss": L, "torch": version}.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "bench"))
from torch_step import build  # noqa: E402


def to_torch(v, p):
    """Our layout to PyTorch's: conv [kh, kw, in, out] -> [out, in, kh, kw], dense [in, out] -> [out, in]."""
    if p.dim() == 4:
        kh, kw, cin, cout = p.shape[2], p.shape[3], p.shape[1], p.shape[0]
        return v.reshape(kh, kw, cin, cout).permute(3, 2, 0, 1)
    if p.dim() == 2:
        return v.reshape(p.shape[1], p.shape[0]).t()
    return v.reshape(p.shape)


def from_torch(g):
    """PyTorch's layout back to ours, flattened."""
    if g.dim() == 4:
        return g.permute(2, 3, 1, 0).reshape(-1)
    if g.dim() == 2:
        return g.t().reshape(-1)
    return g.reshape(-1)


def main():
    cfg = json.loads(sys.stdin.readline())
    torch.set_num_threads(1)
    h, w, c = cfg["input"]
    d = cfg["dir"]
    params = []
    model, out = build(cfg["layers"], [c, h, w], params)
    if out != [cfg["nClasses"]]:
        raise ValueError(f"the network ends in shape {out}, not [{cfg['nClasses']}]")
    model = model.double().train()  # training mode: BatchNorm uses the batch's statistics
    flat = torch.from_numpy(np.fromfile(os.path.join(d, "params.f32"), dtype=np.float32).astype(np.float64))
    offset = 0
    with torch.no_grad():
        for p in params:
            p.copy_(to_torch(flat[offset:offset + p.numel()], p))
            offset += p.numel()
    if offset != flat.numel():
        raise ValueError(f"the network has {offset} parameters, params.f32 {flat.numel()}")
    x = torch.from_numpy(np.fromfile(os.path.join(d, "images.f32"), dtype=np.float32).astype(np.float64))
    x = x.reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.fromfile(os.path.join(d, "labels.i32"), dtype=np.int32).astype(np.int64))
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params)
    torch.cat([from_torch(g) for g in grads]).numpy().tofile(os.path.join(d, "grad.f64"))
    print(json.dumps({"loss": loss.item(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
