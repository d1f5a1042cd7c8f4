"""The README's HGGDP table from the per-mask results of benchmarks/hggdp.sh: masks as rows,
methods as columns, PSNR dB / SSIM [/ HFEN where the run recorded it] (mean over the 31 test
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
    names = {"hggdp": "**HGGDP (ours)**", "gdunet": "GDUNet", "tv": "TV", "l1-wavelet": "L1-wavelet",
             "zero-filled": "zero-filled"}
    print("| mask (sampled) | " + " | ".join(names[m] for m in METHODS) + " | HGGDP − better of TV / L1 |")
    print("|---|" + "---|" * (len(METHODS) + 1))
    for mask, t in table.items():
        cells = [f"{float(t[m]['psnr_mean']):.2f} / {float(t[m]['ssim_mean']):.3f}"
                 + (f" / {float(t[m]['hfen_mean']):.2f}" if t[m].get("hfen_mean") else "") for m in METHODS]
        gain = float(t["hggdp"]["psnr_mean"]) - max(float(t["tv"]["psnr_mean"]), float(t["l1-wavelet"]["psnr_mean"]))
        ratio = float(next(iter(t.values()))["realised_ratio"])
        print(f"| `{mask}` ({ratio:.1%}) | " + " | ".join(cells) + f" | {gain:+.2f} dB |")

if __name__ == "__main__":
    main()
