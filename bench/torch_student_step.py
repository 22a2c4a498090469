#!/usr/bin/env python3
"""PyTorch CPU reference for the student memory/step benches: one TriDet training step
(forward + backward) built from the official model code, github dingfengshi/TriDet
`libs/modeling` (`TriDet` in `meta_archs.py`, SGP backbone, identity neck, Trident head), with
the published `configs/thumos_i3d.yaml` and only the sizes overridden.

Loss: the official `TriDet.losses` (IoU-weighted sigmoid focal classification + DIoU boundary
regression on the decoded Trident distributions, normalised by the running positive count) plus
FuSTAL's MIL term on the level-0 class logits (github fqhank/FuSTAL, student `meta_archs.py`:
dropout 0.7, mean of the top k = floor(valid rows of the batch / 5) over time, softmax over
classes, BCE against the normalised weak labels), which the official TriDet has no hook for and
is therefore computed here from the class head's output (captured with a forward hook). Targets:
two actions per video, as in `student_step_bench.ts`'s `randomStudentBatch`. No optimiser update
(the Deno benches time `variableGrads` only).

The official `meta_archs.py` imports `batched_nms` from `libs.utils`, whose package compiles a
C++ NMS extension; NMS is only used for inference, so this script puts a stub `libs.utils`
module into `sys.modules` before importing the model (nothing else of the repository is
changed or needed).

For comparison only: PyTorch is never a dependency of the toolkit. Debian: apt-get install
python3-torch (then run with /usr/bin/python3). Usage:

    python3 bench/torch_student_step.py --tridet PATH [--size reference|paper] [--batch 8]
        [--threads N] [--steps 1] [--dim D]

PATH is a checkout of dingfengshi/TriDet (the folder holding `libs/` and `configs/`). Prints
one JSON line: the sizes, threads, first-step and best later-step seconds (the first step is
the only one when --steps 0), peak RSS MB (`ru_maxrss`). Without torch or PATH it prints one
`skip:` line and exits 0.
"""
import argparse
import json
import math
import os
import resource
import sys
import time
import types

p = argparse.ArgumentParser()
p.add_argument("--tridet", default=os.environ.get("TRIDET", ""),
               help="checkout of github dingfengshi/TriDet (holds libs/ and configs/)")
p.add_argument("--size", default="reference", choices=["reference", "paper"])
p.add_argument("--batch", type=int, default=8)
p.add_argument("--threads", type=int, default=0, help="0 = torch's default")
p.add_argument("--steps", type=int, default=1, help="timed steps after the first")
p.add_argument("--rows", type=int, default=2304)
p.add_argument("--dim", type=int, default=0, help="input feature dim (default: 256 / 2048)")
a = p.parse_args()

try:
    import torch
    from torch.nn import functional as F
except ImportError:
    print("skip: PyTorch is not installed (Debian: apt-get install python3-torch, "
          "then run with /usr/bin/python3)")
    sys.exit(0)

if not a.tridet or not os.path.isfile(os.path.join(a.tridet, "libs", "modeling", "meta_archs.py")):
    print("skip: --tridet PATH (or TRIDET) must name a checkout of github dingfengshi/TriDet "
          f"holding libs/modeling/meta_archs.py; got {a.tridet!r}")
    sys.exit(0)
if a.batch < 1 or a.rows < 32 or a.rows % 32 != 0:
    print("torch_student_step.py: --batch must be >= 1 and --rows a multiple of 32", file=sys.stderr)
    sys.exit(2)

# Stub the NMS package (C++ extension, inference only) before the official model imports it.
sys.path.insert(0, os.path.abspath(a.tridet))
utils_stub = types.ModuleType("libs.utils")


def _no_nms(*_args, **_kwargs):
    raise RuntimeError("NMS is not available in this bench (training only)")


utils_stub.batched_nms = _no_nms
sys.modules["libs.utils"] = utils_stub
from libs.core import load_config  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402

if a.threads > 0:
    torch.set_num_threads(a.threads)
torch.manual_seed(0)

paper = a.size == "paper"
D = a.dim or (2048 if paper else 256)
width, mlp = (512, 768) if paper else (128, 256)
K, B, T = 20, a.batch, a.rows

cfg = load_config(os.path.join(a.tridet, "configs", "thumos_i3d.yaml"))
cfg["dataset"]["input_dim"] = D
cfg["dataset"]["num_classes"] = K
cfg["dataset"]["max_seq_len"] = T
cfg["model"]["input_dim"] = D
cfg["model"]["num_classes"] = K
cfg["model"]["max_seq_len"] = T
for key in ("embd_dim", "fpn_dim", "head_dim"):
    cfg["model"][key] = width
cfg["model"]["sgp_mlp_dim"] = mlp
model = make_meta_arch(cfg["model_name"], **cfg["model"])
model.train()
n_params = sum(q.numel() for q in model.parameters())

# Level-0 class logits for the MIL term: ClsHead returns a tuple [B, K, T_l] per level.
captured = {}
model.cls_head.register_forward_hook(lambda _m, _i, out: captured.__setitem__("cls0", out[0]))

gen = torch.Generator().manual_seed(2)
video_list = []
for b in range(B):
    video_list.append({
        "feats": torch.relu(torch.randn(D, T, generator=gen)),
        "segments": torch.tensor([[10.0, 40.0], [T / 2, T / 2 + 60.0]]),
        "labels": torch.tensor([b % K, (b + 3) % K]),
    })
weak = torch.zeros(B * K)
weak[::7] = 1
weak = weak.view(B, K)
mil_k = max(1, min(T, (B * T) // 5))


def mil_loss():
    z = F.dropout(captured["cls0"], 0.7, training=True)  # [B, K, T]
    pooled = z.topk(mil_k, dim=2).values.mean(2) if mil_k < T else z.mean(2)
    q = torch.softmax(pooled, 1)
    keep = weak.sum(1) > 0
    y = weak[keep] / weak[keep].sum(1, keepdim=True)
    return F.binary_cross_entropy(q[keep], y)


def step():
    model.zero_grad(set_to_none=True)
    losses = model(video_list)
    total = losses["final_loss"] + mil_loss()
    total.backward()
    return float(total)


times = []
for _ in range(a.steps + 1):
    t0 = time.perf_counter()
    loss = step()
    times.append(time.perf_counter() - t0)
    if not math.isfinite(loss):
        print(f"torch_student_step.py: loss is not finite ({loss})", file=sys.stderr)
        sys.exit(1)
print(json.dumps({
    "size": a.size,
    "B": B, "T": T, "D": D, "width": width, "mlp": mlp,
    "params": n_params,
    "threads": torch.get_num_threads(),
    "firstStepSeconds": times[0],
    "stepSeconds": min(times[1:]) if len(times) > 1 else times[0],
    "loss": loss,
    "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
