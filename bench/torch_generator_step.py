#!/usr/bin/env python3
"""PyTorch CPU reference for bench/blas_bench.ts: a generator-like training step (CoLA's
actionness module as in github fqhank/FuSTAL and zhang-can/CoLA: conv k3 D->H + ReLU + dropout,
conv 1x1 H->C, top-k mean pooling, softmax cross-entropy, Adam), forward + backward + update.

For comparison only: PyTorch is never a dependency of the toolkit. Debian: apt-get install
python3-torch. Usage:

    python3 bench/torch_generator_step.py [--size default|paper] [--threads N] [--steps 3]

Prints one JSON line: size, threads, seconds per step (best after one warm-up), peak RSS MB.
"""
import argparse
import json
import resource
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--size", default="default", choices=["default", "paper"])
p.add_argument("--threads", type=int, default=torch.get_num_threads())
p.add_argument("--steps", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
B, T, D = (16, 750, 2048) if a.size == "paper" else (16, 256, 128)
H, C = D, 20
emb = torch.nn.Conv1d(D, H, 3, padding=1)
cls = torch.nn.Conv1d(H, C, 1, bias=False)
drop = torch.nn.Dropout(0.7)
opt = torch.optim.Adam(list(emb.parameters()) + list(cls.parameters()), lr=1e-4, weight_decay=5e-4)
x = torch.relu(torch.randn(B, D, T) - 0.5)
y = torch.zeros(B, C)
y[torch.arange(B), torch.arange(B) % 4] = 1
k = T // 8


def step():
    opt.zero_grad()
    h = drop(torch.relu(emb(x)))
    cas = torch.relu(cls(h))  # B x C x T
    pooled = cas.topk(k, dim=2).values.mean(2)
    loss = -(y * torch.log_softmax(pooled, 1)).sum(1).mean()
    loss.backward()
    opt.step()
    return float(loss)


times = []
for _ in range(a.steps + 1):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
best = min(times[1:]) if len(times) > 1 else times[0]
print(json.dumps({
    "size": a.size,
    "B": B, "T": T, "D": D,
    "threads": a.threads,
    "stepSeconds": best,
    "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
