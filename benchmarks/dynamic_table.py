"""The README's dynamic MRI table from the results of benchmarks/dynamic.sh: methods as rows,
test set × mask family as columns, PSNR dB (± std over series where there are several) / SSIM,
plus the DD-UGM ablation without its score-model steps (the "-nonet" jobs) and DD-UGM's margin
over the best classical row of the same run. Jobs not run yet are left out.

    .venv/bin/python benchmarks/dynamic_table.py > benchmarks/results/dynamic.md
"""

import csv
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
JOBS = {"p33_cart": "heart p33, R10 + ACS20", "p33_radial": "heart p33, radial 15 %",
        "tmi_own": "tmi, own mask", "tmi_cart": "tmi, equispaced R10", "tmi_radial": "tmi, radial 15 %"}
METHODS = {"zero-filled": "zero-filled", "tv": "TV (spatio-temporal)", "l1-wavelet": "L1-wavelet (per frame)",
           "lplus-s": "L+S", "dd-ugm": "**DD-UGM (ours, fast)**"}
CLASSICAL = ("zero-filled", "tv", "l1-wavelet", "lplus-s")


def _rows(job: str) -> dict:
    path = RESULTS / f"dynamic_{job}.csv"
    return {r["method"]: r for r in csv.DictReader(open(path))} if path.exists() else {}


def _cell(r: dict | None) -> str:
    if r is None:
        return "–"
    std = f" ± {float(r['psnr_std']):.2f}" if int(r["n"]) > 1 else ""
    return f"{float(r['psnr_mean']):.2f}{std} / {float(r['ssim_mean']):.4f}"


def main() -> None:
    runs = {job: _rows(job) for job in JOBS if _rows(job)}
    ablation = {job: _rows(f"{job}-nonet").get("dd-ugm") for job in runs}
    print("| method | " + " | ".join(JOBS[j] for j in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for m, name in METHODS.items():
        print(f"| {name} | " + " | ".join(_cell(runs[j].get(m)) for j in runs) + " |")
    print("| DD-UGM, score-model steps off (ablation) | " + " | ".join(_cell(ablation[j]) for j in runs) + " |")
    margins = []
    for j in runs:
        best = max(float(runs[j][m]["psnr_mean"]) for m in CLASSICAL if m in runs[j])
        margins.append(f"{float(runs[j]['dd-ugm']['psnr_mean']) - best:+.2f} dB" if "dd-ugm" in runs[j] else "–")
    print("| DD-UGM − best classical row | " + " | ".join(margins) + " |")
    print("| DD-UGM s per series (1 thread, loaded machine) | "
          + " | ".join(f"{float(runs[j]['dd-ugm']['seconds_per_slice']):.0f}" if "dd-ugm" in runs[j] else "–"
                       for j in runs) + " |")


if __name__ == "__main__":
    main()
