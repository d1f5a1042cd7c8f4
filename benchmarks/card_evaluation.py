"""Write a bench table's verdict into a model card: for every setting (ratio, view count) the
model's PSNR/SSIM and the best classical row of the *same* run, so the method can say at run time
where the model is below a classical method (``methods.learned.weaker_note``; dock and CLI notes).

    .venv/bin/python benchmarks/card_evaluation.py benchmarks/results/brain50_gdunet_cartesian.csv \
        src/napari_unrollrecon/weights/gdunet-mri-cpu-w32-s10.json --model gdunet \
        --data "brain-50 (ISTA-Net test images)" --family cartesian

An entry with the same table is replaced; the card's other keys (and the weights' sha256) are kept.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def _classical(name: str) -> bool:
    """A row of a method the registry does not call learned (zero-filled, FBP, TV, L1, L+S)."""
    from napari_unrollrecon.engine import registry

    return name in registry.names() and not registry.get(name).learned


def entry(rows: list[dict], model: str, data: str, family: str | None, table: str) -> dict:
    results = {}
    for r in (r for r in rows if r["method"] == model):
        same = [c for c in rows if c["setting"] == r["setting"] and c["mask"] == r["mask"] and _classical(c["method"])]
        if not same:
            raise SystemExit(f"no classical row at {r['setting']} in {table}: the verdict needs one from the same run")
        best = max(same, key=lambda c: float(c["psnr_mean"]))
        results[r["setting"]] = {"psnr": round(float(r["psnr_mean"]), 2), "ssim": round(float(r["ssim_mean"]), 4),
                                 "best_classical": best["method"],
                                 "best_classical_psnr": round(float(best["psnr_mean"]), 2)}
    if not results:
        raise SystemExit(f"no rows of {model!r} in {table}")
    out = {"what": f"{data}, {rows[0]['mask']}", "data": data, "table": table,
           "command": f"the first line of {table}", "results": results}
    return {**out, "family": family} if family else out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("card", type=Path)
    ap.add_argument("--model", required=True, help="the method's row name in the table")
    ap.add_argument("--data", required=True, help="what the images are, as a reader should see it")
    ap.add_argument("--family", default=None, help="mask family of the table (cartesian, radial, random2d); none for CT")
    args = ap.parse_args(argv)
    rows = list(csv.DictReader(args.csv.open()))
    table = str(args.csv.with_suffix(".md"))
    new = entry(rows, args.model, args.data, args.family, table)
    card = json.loads(args.card.read_text())
    kept = [e for e in card.get("evaluation") or [] if e.get("table") != table and not (
        e.get("command", "").endswith(f"(see {table})"))]
    card["evaluation"] = kept + [new]
    args.card.write_text(json.dumps(card, indent=2) + "\n")
    worse = {s: r for s, r in new["results"].items() if r["psnr"] < r["best_classical_psnr"]}
    print(f"{args.card.name}: {len(new['results'])} settings; below the best classical row at: "
          + (", ".join(f"{s} ({r['psnr']} vs {r['best_classical']} {r['best_classical_psnr']})" for s, r in worse.items())
             or "none"))


if __name__ == "__main__":
    main()
