"""The README's HGGDP table from the per-mask results of benchmarks/hggdp.sh: methods as rows,
masks as columns, PSNR dB / SSIM [/ HFEN where the run recorded it] (mean over the 31 test
slices); masks not run yet are left out.

    .venv/bin/python benchmarks/hggdp_table.py > benchmarks/results/siat31_hggdp.md
"""

import csv
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
MASKS = ["radial_010", "radial_015", "radial_020", "radial_030", "random_010", "random_015", "random_020",
         "random_030", "cart_010", "cart_085", "cart_020", "cart_030"]
METHODS = ["hggdp", "gdunet", "tv", "l1-wavelet", "zero-filled"]


def main() -> None:
    table = {}
    for m in MASKS:
        path = RESULTS / f"siat31_hggdp_{m}.csv"
        if path.exists():
            table[m] = {r["method"]: r for r in csv.DictReader(open(path))}
    print("| method | " + " | ".join(f"{m} ({float(next(iter(t.values()))['realised_ratio']):.1%})"
                                      for m, t in table.items()) + " |")
    print("|---|" + "---|" * len(table))
    for meth in METHODS:
        cells = [f"{float(t[meth]['psnr_mean']):.2f} / {float(t[meth]['ssim_mean']):.3f}"
                 + (f" / {float(t[meth]['hfen_mean']):.3f}" if t[meth].get("hfen_mean") else "") for t in table.values()]
        name = f"**{meth} (ours, fast default)**" if meth == "hggdp" else meth
        print(f"| {name} | " + " | ".join(cells) + " |")
    gains = [float(t["hggdp"]["psnr_mean"]) - max(float(t["tv"]["psnr_mean"]), float(t["l1-wavelet"]["psnr_mean"]))
             for t in table.values()]
    print("| *HGGDP − better of TV / L1 (dB)* | " + " | ".join(f"*{g:+.2f}*" for g in gains) + " |")


if __name__ == "__main__":
    main()
