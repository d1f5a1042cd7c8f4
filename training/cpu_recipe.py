"""Measure CPU training throughput of a small unrolled-style conv net under different settings.

    python -m training.cpu_recipe --threads 2 --patch 128 --batch 4 [--channels-last] [--compile]
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python -m training.cpu_recipe ...

The net is a stand-in for one CGPD-CSNet-like stage repeated: a 3x3 conv to ``width`` channels, a
dense block of ``dense`` conv3x3+ReLU layers (growth ``width``) fused by a 1x1 conv, two residual
blocks at half resolution (stride-2 conv down, transposed conv up), a 3x3 conv back to 2 channels,
repeated ``stages`` times, with an FFT data-consistency step between stages. It prints
milliseconds per training step (forward, backward, Adam) and images per second after warm-up,
both as wall time and as CPU time of the process (``cpu_ms_per_step``: user + system time of all
its threads). On a machine shared with other jobs the wall time varies with their load; the CPU
time of a one-thread run hardly does, so settings are compared by CPU time there.
Numbers for docs/training.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn


class _Stage(nn.Module):
    def __init__(self, width: int, dense: int):
        super().__init__()
        self.inp = nn.Conv2d(2, width, 3, padding=1)
        self.dense = nn.ModuleList(nn.Conv2d(width * (i + 1), width, 3, padding=1) for i in range(dense))
        self.fuse = nn.Conv2d(width * (dense + 1), width, 1)
        self.down = nn.Conv2d(width, width, 2, stride=2)
        self.res = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(4))
        self.up = nn.ConvTranspose2d(width, width, 2, stride=2)
        self.out = nn.Conv2d(width, 2, 3, padding=1)

    def forward(self, x):
        feats = [torch.relu(self.inp(x))]
        for conv in self.dense:
            feats.append(torch.relu(conv(torch.cat(feats, 1))))
        h = self.fuse(torch.cat(feats, 1))
        c = self.down(h)
        for a, b in zip(self.res[::2], self.res[1::2]):
            c = c + b(torch.relu(a(c)))
        return x + self.out(h + self.up(c))


class Net(nn.Module):
    def __init__(self, width=16, dense=4, stages=3):
        super().__init__()
        self.stages = nn.ModuleList(_Stage(width, dense) for _ in range(stages))

    def forward(self, x, mask, y):
        for stage in self.stages:
            x = stage(x)
            k = torch.fft.fft2(torch.complex(x[:, 0], x[:, 1]), norm="ortho")
            k = k * (1 - mask) + y
            z = torch.fft.ifft2(k, norm="ortho")
            x = torch.stack([z.real, z.imag], 1)
        return x


def measure(threads=2, patch=128, batch=4, width=16, dense=4, stages=3, channels_last=False, compile=False,
            steps=8, warmup=3) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Net(width, dense, stages)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    model = torch.compile(net) if compile else net
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    target = torch.randn(batch, 2, patch, patch).contiguous(memory_format=fmt)
    mask = (torch.rand(patch, patch) < 0.3).float()
    y = torch.fft.fft2(torch.complex(target[:, 0], target[:, 1]), norm="ortho") * mask
    x0 = torch.fft.ifft2(y, norm="ortho")
    x0 = torch.stack([x0.real, x0.imag], 1).contiguous(memory_format=fmt)
    t_first = time.perf_counter()
    times, cpu = [], []
    for i in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = (model(x0, mask, y) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if i == 0:
            first = time.perf_counter() - t_first
    ms = 1000 * sorted(times[warmup:])[len(times[warmup:]) // 2]  # median: robust to a busy neighbour
    cpu_ms = 1000 * sorted(cpu[warmup:])[len(cpu[warmup:]) // 2]
    return {"threads": threads, "patch": patch, "batch": batch, "channels_last": channels_last, "compile": compile,
            "ms_per_step": round(ms, 1), "cpu_ms_per_step": round(cpu_ms, 1), "imgs_per_s": round(1000 * batch / ms, 2),
            "mpix_per_s": round(batch * patch * patch / ms / 1000, 3), "first_step_s": round(first, 2),
            "params": sum(p.numel() for p in net.parameters())}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m training.cpu_recipe", description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--dense", type=int, default=4)
    ap.add_argument("--stages", type=int, default=3)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args(argv)
    print(json.dumps(measure(a.threads, a.patch, a.batch, a.width, a.dense, a.stages, a.channels_last, a.compile,
                             a.steps)))


if __name__ == "__main__":
    main()
