"""HGGDP speed: seconds per network evaluation and per 256² slice, for each schedule and V.

    .venv/bin/python benchmarks/bench_hggdp.py [--threads 2] [--repeats 3] [--paper-net]

Times the CPU network and (``--paper-net``) the authors'-size network (30 M parameters) in the
same run, reports the machine's load, and extrapolates each schedule's time per slice from the
measured time per evaluation × the schedule's evaluation count (V views count V evaluations,
batched). Untrained weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from napari_unrollrecon.methods import hggdp as H


def seconds_per_eval(model, batch: int, size: int, repeats: int) -> float:
    x = torch.randn(batch, model.channels, size, size)
    with torch.no_grad():
        model(x, 0.1)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x, 0.1)
    return (time.perf_counter() - t0) / repeats


def evaluations(model, schedule: dict) -> int:
    """Network evaluations of one slice (one sample): rounds × V."""
    return H.ladder_length(model, schedule) * H.steps_per_level(schedule) * max(1, int(schedule["views"]))


def end_to_end(size: int) -> float:
    """One whole fast-default run (bundled weights, V = 1, K = 1) on the complex phantom at radial
    15 %, through the same stream the dock and the CLI use: evaluations plus everything else."""
    from napari_unrollrecon.engine import phantoms, problems, registry
    from napari_unrollrecon.engine.stream import run
    from napari_unrollrecon.physics.masks import make_mask

    problem = problems.mri_from_image(phantoms.mri_phantom(size), make_mask("radial", (size, size), 0.15, seed=0))
    t0 = time.perf_counter()
    run(registry.get("hggdp"), problem, {})
    return round(time.perf_counter() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--paper-net", action="store_true", help="also time the 30 M-parameter network")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {"threads": args.threads, "load_before": os.getloadavg(), "nets": {}}
    nets = ["cpu16", "cpu"] + (["paper"] if args.paper_net else [])  # cpu16: the bundled network
    for name in nets:
        model = H.build_model(H.CONFIGS[name]).eval()
        per = {v: seconds_per_eval(model, v, args.size, args.repeats) / v for v in (1, 3)}
        rows = {}
        for sched in H.SCHEDULES:
            for views in (1, 3):
                s = {**H.SCHEDULES[sched], "views": views}
                n = evaluations(model, s)
                rows[f"{sched}, V={views}"] = {"evaluations": n, "seconds_per_slice": round(n * per[views], 1)}
        out["nets"][name] = {"parameters": H.ncsn.parameter_count(model),
                             "s_per_eval": {f"batch {v}": round(t, 4) for v, t in per.items()}, "schedules": rows}
    out["fast_default_end_to_end_s"] = end_to_end(args.size)
    out["load_after"] = os.getloadavg()
    if "paper" in out["nets"]:
        out["paper_over_cpu16_per_eval"] = round(out["nets"]["paper"]["s_per_eval"]["batch 1"]
                                                 / out["nets"]["cpu16"]["s_per_eval"]["batch 1"], 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
