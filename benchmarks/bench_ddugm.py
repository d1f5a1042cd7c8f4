"""DD-UGM speed: seconds per 16-frame 192² series, measured end to end for the fast schedule,
with the pieces (network evaluation, Hankel low rank by Gram eigendecomposition vs full SVD, the
TV step) and the paper schedule (1000 iterations, C = 3, the 66 M-parameter network)
extrapolated from the measured iterations (without our TV step, which the paper schedule does
not take). L+S (50 iterations) is timed in the same run as the baseline; the machine's load is
reported. Untrained weights: speed does not depend on them.

    .venv/bin/python benchmarks/bench_ddugm.py [--threads 2] [--frames 16] [--size 192] [--paper-net]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from napari_unrollrecon.engine import phantoms, problems, registry, stream
from napari_unrollrecon.methods import dd_ugm_models as M
from napari_unrollrecon.methods.dd_ugm import SCHEDULES, TV_ITERATIONS
from napari_unrollrecon.physics.masks import make_mask
from napari_unrollrecon.priors import lowrank
from napari_unrollrecon.priors.tv import tv_prox


def timed(fn, repeats=1):
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser()
    for name, default in (("threads", 2), ("frames", 16), ("size", 192)):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--paper-net", action="store_true", help="also time one evaluation of the 66 M network")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t, n = args.frames, args.size
    out = {**vars(args), "load_before": os.getloadavg()}
    x0 = phantoms.cine_phantom(t, n)
    problem = problems.mri_from_image(x0, make_mask("equispaced", x0.shape, 0.2, seed=0))
    out["lplus_s_50_iterations_s"] = round(timed(lambda: stream.run(registry.get("lplus-s"), problem)), 2)
    k = torch.fft.fft2(torch.from_numpy(x0).to(torch.complex64))
    out["hankel_gram_s"] = round(timed(lambda: lowrank.hankel_project(k, method="gram"), 2), 3)
    out["hankel_svd_s"] = round(timed(lambda: lowrank.hankel_project(k, method="svd")), 3)
    xc = torch.from_numpy(x0).to(torch.complex64)
    out["tv_step_s"] = round(timed(lambda: tv_prox(xc, SCHEDULES["fast"]["tv"], iterations=TV_ITERATIONS), 2), 3)
    torch.manual_seed(0)
    models = [M.build_model(M.CONFIGS["cpu"]).eval() for _ in range(2)]
    with torch.no_grad():
        xb = torch.randn(t, 2, n, n)
        out["cpu_net_s_per_frame"] = round(timed(lambda: models[0](xb, 0.1), 2) / t, 4)
    with M.STORES["dd-ugm-k"].override(models[0]), M.STORES["dd-ugm-x"].override(models[1]):
        for chains in (1, 2):
            t0 = time.perf_counter()
            res = stream.run(registry.get("dd-ugm"), problem, {"chains": chains})
            out[f"fast_C{chains}_s_per_series"] = round(time.perf_counter() - t0, 1)
            out[f"fast_C{chains}_stages"] = res.stages  # L+S warm-start stages + sampler iterations
            out[f"fast_C{chains}_iterations"] = res.meta["schedule"]["iterations"]
            out[f"fast_C{chains}_evaluations_per_frame"] = res.meta["network_evaluations_per_frame"]
    warm_s = out["lplus_s_50_iterations_s"] * (out["fast_C2_stages"] - out["fast_C2_iterations"]) / 50
    # the paper's iteration has no TV step (ours): take it out before scaling to C = 3
    per_iter_c2 = (out["fast_C2_s_per_series"] - warm_s) / out["fast_C2_iterations"] - out["tv_step_s"]
    per_iter_c3 = per_iter_c2 * (2 + 2 * 3) / (2 + 2 * 2)
    out["paper_schedule_cpu_net_extrapolated_h"] = round(1000 * per_iter_c3 / 3600, 2)
    if args.paper_net:
        big = M.build_model(M.CONFIGS["paper"]).eval()
        with torch.no_grad():
            one = timed(lambda: big(torch.randn(1, 2, n, n), 0.1))
        out["paper_net_s_per_frame"] = round(one, 2)
        # 1000 iterations × (2 predictors + 2·3 corrector chains) × frames evaluations, plus Hankel
        out["paper_schedule_paper_net_extrapolated_h"] = round(
            1000 * ((2 + 6) * t * one + out["hankel_gram_s"]) / 3600, 1)
    out["ratio_fast_C1_to_lplus_s"] = round(out["fast_C1_s_per_series"] / out["lplus_s_50_iterations_s"], 1)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
