"""What a config costs: FLOPs per training step (counted), a GPU-time estimate, a CPU measurement.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one real training step
(make_batch, loss, backward) and one inference (predict) at the config's patch size and batch.
It counts matrix products and convolutions (2 FLOPs per multiply-add); FFTs, element-wise
operations and the optimiser are not counted, so the figure is a lower bound on the work and the
GPU time derived from it is an **estimate**: FLOPs / (peak x assumed utilisation).
"""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

#: Peak dense FP32 TFLOP/s (vendor figures; TF32/BF16 tensor cores are faster still).
GPUS = {"V100": 15.7, "A100 (FP32)": 19.5, "RTX 4090": 82.6, "H100 SXM (FP32)": 67.0}
#: Sustained fraction of peak assumed for small-batch image CNNs (an assumption, not a measurement).
UTILISATION = 0.35


def count(run) -> tuple[float, float]:
    """(FLOPs of one training step, FLOPs of one inference of one sample) for a trainer ``_Run``."""
    import numpy as np

    from napari_unrollrecon.methods.learned import unwrap

    t = run.method.training
    with FlopCounterMode(display=False) as fc:
        run._train_step(run.model)
    train_flops = fc.get_total_flops()
    image = torch.from_numpy(run.sampler.batch(1, np.random.default_rng(0))).to(run.ctx.device)
    model = unwrap(run.model).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        t.predict(model, t.make_batch(image, torch.Generator().manual_seed(0), run.model_cfg))
    return float(train_flops), float(fc.get_total_flops())


def time_steps(run, steps: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per training step here, after one warm-up step.

    On a shared machine the wall time depends on the neighbours' load; the CPU time much less.
    """
    run._train_step(run.model)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        run._train_step(run.model)
    n = max(steps, 1)
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def report(cfg: dict, measure: int = 0, tflops: float | None = None) -> str:
    from training import dist as Dd
    from training.trainer import _Run

    ctx = Dd.setup(cfg["train"]["device"], cfg["train"]["threads"])
    run = _Run(cfg, ctx, command="cost")
    t = cfg["train"]
    train_flops, infer_flops = count(run)
    params = sum(p.numel() for p in run.model.parameters())
    size = cfg["data"]["patch"] or "full images"
    total = train_flops * t["steps"]
    lines = [f"{cfg['name']}: {params / 1e6:.3f} M parameters, batch {t['batch']}, patch {size}, {t['steps']} steps",
             f"counted: {train_flops / 1e9:.3f} GFLOP per training step, {infer_flops / 1e9:.3f} GFLOP per "
             f"inference of one sample (convolutions and matrix products; FFTs not counted)",
             f"whole run: {total / 1e15:.3f} PFLOP",
             f"ESTIMATE of GPU time at {UTILISATION:.0%} of FP32 peak (one GPU):"]
    gpus = dict(GPUS) | ({"yours": tflops / UTILISATION} if tflops else {})
    for name, peak in gpus.items():
        secs = total / (peak * 1e12 * UTILISATION)
        lines.append(f"  {name:18s} {peak:6.1f} TFLOP/s peak -> {_hms(secs)}")
    if measure:
        s, cpu = time_steps(run, measure)
        lines.append(f"measured here ({torch.get_num_threads()} threads, {ctx.device}): {s:.3f} s per step "
                     f"(CPU time {cpu:.3f} s) = {train_flops / s / 1e9:.1f} GFLOP/s; the whole run would take "
                     f"{_hms(s * t['steps'])}")
    return "\n".join(lines)


def _hms(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
