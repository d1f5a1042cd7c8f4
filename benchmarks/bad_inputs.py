"""The bad-input matrix: every case through the CLI, the Python API and the napari reader.

    .venv/bin/python benchmarks/bad_inputs.py [--out docs/reliability_matrix.md] [--only SUBSTRING]

Each case runs in its own process with a time limit and an address-space limit, and is classed:
``error`` (exit 2 / a raised ``ValueError`` with a one-line message), ``ok`` (a finite result),
``traceback``, ``hang``, ``oom`` or ``nonfinite``. The expected class of every case is part of the
table; the script exits 1 when any case is a traceback, hang, out-of-memory or non-finite output,
or when a case's class differs from the expected one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "napari_unrollrecon"]
TIMEOUT = 90
MEM_LIMIT = 6 * 2**30  # the child's address space; a size bomb must be refused well below it


def _files(d: Path) -> dict:
    """Small inputs, good and bad, written once into ``d``."""
    rng = np.random.default_rng(0)
    img = rng.random((64, 64)).astype(np.float32)
    f = {"img": d / "img.npy", "const": d / "const" / "c.npy", "huge": d / "huge.npy", "nanimg": d / "nan.npy",
         "pickle": d / "pickle.npy", "text": d / "text.png", "cplx_mat": d / "k.mat", "dir": d / "adir",
         "nanw": d / "nanw.safetensors", "bigh5": d / "big.h5", "bigk": d / "bigk.h5", "coils": d / "coils.h5",
         "trunc": d / "trunc.npy", "bigpng": d / "big.png", "mask_bad": d / "mask5.npy", "folder": d / "folder"}
    np.save(f["img"], img)
    f["const"].parent.mkdir()
    np.save(f["const"], np.ones((64, 64), np.float32))
    np.save(f["huge"], np.full((64, 64), 3e38, np.float32) * img)
    bad = img.copy()
    bad[3, 3] = np.nan
    np.save(f["nanimg"], bad)
    f["pickle"].write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    f["text"].write_text("not a picture")
    f["dir"].mkdir()
    f["folder"].mkdir()
    np.save(f["folder"] / "a.npy", img)
    np.save(f["trunc"], img)
    f["trunc"].write_bytes(f["trunc"].read_bytes()[:200])
    np.save(f["mask_bad"], np.full((64, 64), 5.0, np.float32))
    _weights_with_nan(f["nanw"])
    _h5_bombs(f)
    _png_bomb(f["bigpng"])
    return {k: str(v) for k, v in f.items()}


def _weights_with_nan(path: Path) -> None:
    """The bundled GDUNet MRI tensors, every value NaN, and no card beside them."""
    from safetensors.numpy import load_file, save_file

    src = next((ROOT / "src" / "napari_unrollrecon" / "weights").glob("gdunet-mri-*.safetensors"))
    save_file({k: np.full(v.shape, np.nan, v.dtype) for k, v in load_file(str(src)).items()}, str(path))


def _h5_bombs(f: dict) -> None:
    import h5py

    with h5py.File(f["bigh5"], "w") as h:  # declares 100,000² float32 (40 GB), stores nothing
        h.create_dataset("image", shape=(100_000, 100_000), dtype="f4", chunks=(256, 256))
    with h5py.File(f["bigk"], "w") as h:
        h.create_dataset("kspace", shape=(1, 40_000, 40_000), dtype="c8", chunks=(1, 256, 256))
    rng = np.random.default_rng(1)
    k = (rng.standard_normal((1, 4, 64, 64)) + 1j * rng.standard_normal((1, 4, 64, 64))).astype(np.complex64)
    k[0, 1, 5, 5] = np.nan
    with h5py.File(f["coils"], "w") as h:
        h.create_dataset("kspace", data=k)


def _png_bomb(path: Path) -> None:
    """A 12,000² grey PNG: small on disk, 144 M pixels once decoded."""
    import zlib

    w = h = 12_000
    raw = zlib.compress((b"\x00" + b"\x80" * w) * h, 9)

    def chunk(t, data):
        return len(data).to_bytes(4, "big") + t + data + zlib.crc32(t + data).to_bytes(4, "big")

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def cases(f: dict, out: str) -> list[dict]:
    """(interface, case, expected, how) rows; ``how`` is CLI arguments or a Python snippet."""
    o = str(Path(out) / "o.npy")
    recon = ["recon", f["img"], "-o", o, "-q"]
    cli = [
        ("values near float32 max, zero-filled", "error", ["recon", f["huge"], "-o", o, "--method", "zero-filled", "-q"]),
        ("values near float32 max, TV", "error", ["recon", f["huge"], "-o", o, "--method", "tv", "-q",
                                               "--param", "iterations=5"]),
        ("NaN pixel in the image", "error", ["recon", f["nanimg"], "-o", o, "--method", "zero-filled", "-q"]),
        ("--noise nan", "error", [*recon, "--method", "zero-filled", "--noise", "nan"]),
        ("--noise inf", "error", [*recon, "--method", "zero-filled", "--noise", "inf"]),
        ("--noise -1", "error", [*recon, "--method", "zero-filled", "--noise", "-1"]),
        ("NaN weights without a card", "error", [*recon, "--method", "gdunet", "--weights", f["nanw"]]),
        ("pickle renamed .npy", "error", ["recon", f["pickle"], "-o", o, "--method", "zero-filled", "-q"]),
        ("text renamed .png", "error", ["recon", f["text"], "-o", o, "--method", "zero-filled", "-q"]),
        ("truncated .npy", "error", ["recon", f["trunc"], "-o", o, "--method", "zero-filled", "-q"]),
        ("12,000² PNG (decompression bomb)", "error", ["recon", f["bigpng"], "-o", o, "--method", "zero-filled", "-q"]),
        ("h5 declaring 100,000²", "error", ["recon", f["bigh5"], "-o", o, "--method", "zero-filled", "-q"]),
        ("h5 k-space 40,000²", "error", ["recon", f["bigk"], "-o", o, "--method", "zero-filled", "-q"]),
        ("multi-coil k-space with one NaN", "error", ["recon", f["coils"], "-o", o, "--method", "zero-filled", "-q"]),
        ("mask file of 5s (read as 0/1, like a 0/255 PNG)", "ok", [*recon, "--method", "zero-filled", "--mask-file", f["mask_bad"]]),
        ("output is a directory", "error", ["recon", f["img"], "-o", f["dir"], "--method", "zero-filled", "-q"]),
        ("output in a missing folder", "ok", ["recon", f["img"], "-o", str(Path(out) / "new" / "o.npy"),
                                             "--method", "zero-filled", "-q"]),
        ("output is the input", "error", ["recon", f["img"], "-o", f["img"], "--method", "zero-filled", "-q"]),
        ("output inside an input folder", "error", ["recon", f["folder"], "-o", f["folder"] + "/out.npy",
                                                    "--method", "zero-filled", "-q"]),
        ("output with an unknown extension", "error", [*recon[:3], str(Path(out) / "o.xyz"), "--method", "zero-filled"]),
        ("full disk (/dev/full)", "error", ["recon", f["img"], "-o", "/dev/full", "--method", "zero-filled", "-q"]),
        ("--device meta", "error", [*recon, "--method", "zero-filled", "--device", "meta"]),
        ("--device cuda:7 without CUDA", "error", [*recon, "--method", "zero-filled", "--device", "cuda:7"]),
        ("unknown method", "error", [*recon, "--method", "magic"]),
        ("--views 0 (FBP)", "error", [*recon, "--method", "fbp", "--views", "0"]),
        ("--views 0 (TV)", "error", [*recon, "--method", "tv", "--views", "0"]),
        ("--views 100000 (TV)", "error", [*recon, "--method", "tv", "--views", "100000"]),
        ("misspelt boolean parameter", "error", [*recon, "--method", "tv", "--param", "nonneg=ture"]),
        ("--memory-limit 1K on a 64² image", "error", [*recon, "--method", "tv", "--memory-limit", "1K"]),
        ("--memory-limit lots", "error", [*recon, "--method", "tv", "--memory-limit", "lots"]),
        ("unknown parameter", "error", [*recon, "--method", "tv", "--param", "lamda=0.1"]),
        ("parameter out of range", "error", [*recon, "--method", "tv", "--param", "iterations=-3"]),
        ("--ratio 0", "error", [*recon, "--method", "zero-filled", "--ratio", "0"]),
        ("--ratio 150", "error", [*recon, "--method", "zero-filled", "--ratio", "150"]),
        ("--mask bogus", "error", [*recon, "--method", "zero-filled", "--mask", "bogus"]),
        ("missing input file", "error", ["recon", str(Path(out) / "nope.npy"), "-o", o, "--method", "tv", "-q"]),
        ("reference of another shape", "error", [*recon, "--method", "zero-filled", "--reference", f["bigpng"]]),
        ("mask --shape 100000 100000", "error", ["mask", "--shape", "100000", "100000"]),
        ("mask poisson 8192² (≈16 GiB working set)", "error", ["mask", "--shape", "8192", "8192", "--mask", "poisson", "--ratio", "0.1"]),
        ("mask --shape 0 5", "error", ["mask", "--shape", "0", "5"]),
        ("mask --preview out.txt", "error", ["mask", "--preview", str(Path(out) / "p.txt")]),
        ("bench --methods magic", "error", ["bench", str(Path(f["img"]).parent), "--methods", "magic", "-q",
                                            "-o", str(Path(out) / "b")]),
        ("bench on constant images", "error", ["bench", str(Path(f["const"]).parent), "--methods", "zero-filled",
                                               "--ratios", "20", "-q", "-o", str(Path(out) / "b")]),
        ("bench --limit 0", "error", ["bench", f["folder"], "--limit", "0", "-q", "-o", str(Path(out) / "b")]),
        ("bench --limit -1", "error", ["bench", f["folder"], "--limit", "-1", "-q", "-o", str(Path(out) / "b")]),
        ("bench --views 0", "error", ["bench", f["folder"], "--views", "0", "--methods", "fbp", "-q",
                                      "-o", str(Path(out) / "b")]),
        ("bench --param for a method not run", "error", ["bench", f["folder"], "--methods", "tv", "-q",
                                                        "--param", "fbp:filter=ramp", "-o", str(Path(out) / "b")]),
        ("bench --ratios abc", "error", ["bench", f["folder"], "--ratios", "abc", "-q", "-o", str(Path(out) / "b")]),
    ]
    api = [
        ("mask with NaN", "error", "m = np.ones((64, 64)); m[0, 0] = np.nan; problems.mri_from_image(img, m)"),
        ("mask with Inf", "error", "m = np.ones((64, 64)); m[0, 0] = np.inf; problems.mri_from_image(img, m)"),
        ("negative mask", "error", "problems.mri_from_image(img, -np.ones((64, 64)))"),
        ("mask of 5s", "error", "problems.mri_from_image(img, np.full((64, 64), 5.0))"),
        ("all-zero mask", "error", "problems.mri_from_image(img, np.zeros((64, 64)))"),
        ("mask of another shape", "error", "problems.mri_from_image(img, np.ones((32, 32)))"),
        ("image with NaN", "error", "a = img.copy(); a[1, 1] = np.nan; problems.mri_from_image(a, np.ones((64, 64)))"),
        ("io.write of an all-NaN array", "error", "io.write(OUT + '/w.npy', np.full((4, 4), np.nan))"),
        ("io.write over its own input", "ok", "io.write(OUT + '/w2.npy', img); io.write(OUT + '/w2.npy', img)"),
        ("rss of coils with one NaN", "error", "k = np.ones((4, 8, 8), complex); k[1, 2, 2] = np.nan; io.rss_image(k)"),
        ("read a 100,000² h5", "error", f"io.read({f['bigh5']!r})"),
        ("read a pickle", "error", f"io.read({f['pickle']!r})"),
        ("NaN weights", "error", f"registry.get('gdunet'); from napari_unrollrecon.methods import gdunet; "
                                 f"gdunet.STORE.resolve({f['nanw']!r}, torch.device('cpu'))"),
        ("TV of an 8192² image", "error", "from napari_unrollrecon.engine.stream import collect, stream; "
                                          "p = problems.mri_from_image(np.ones((8192, 8192), np.float32), "
                                          "np.ones((8192, 8192))); collect(stream(registry.get('tv'), p))"),
    ]
    reader = [  # get_reader declines (None) what it cannot sniff; a size bomb is sniffed fine and refused on read
        (name, "error" if key in ("bigh5", "bigk") else "none", f"print('none' if get_reader({f[key]!r}) is None else get_reader({f[key]!r})({f[key]!r}))")
        for name, key in [("pickle renamed .npy", "pickle"), ("text renamed .png", "text"),
                          ("truncated .npy", "trunc"), ("12,000² PNG", "bigpng"), ("h5 declaring 100,000²", "bigh5"),
                          ("h5 k-space 40,000²", "bigk")]
    ]
    rows = [{"interface": "CLI", "case": c, "expected": e, "argv": a} for c, e, a in cli]
    rows += [{"interface": "API", "case": c, "expected": e, "code": s} for c, e, s in api]
    rows += [{"interface": "reader", "case": c, "expected": e, "code": s} for c, e, s in reader]
    return rows


PRELUDE = textwrap.dedent("""
    import numpy as np, torch
    from napari_unrollrecon.engine import io, problems, registry
    from napari_unrollrecon._reader import get_reader
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    OUT = {out!r}
""")


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))


def run_case(row: dict, out: str) -> dict:
    if "argv" in row:
        cmd = [*CLI, *row["argv"]]
    else:
        body = "try:\n" + textwrap.indent(row["code"].replace("; ", "\n"), "    ") + \
               "\nexcept ValueError as e:\n    import sys; print(f'error: {e}', file=sys.stderr); sys.exit(2)\n"
        cmd = [sys.executable, "-c", PRELUDE.format(out=out) + body]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=_limit, env=env)
    except subprocess.TimeoutExpired:
        return {**row, "outcome": "hang", "message": f"> {TIMEOUT} s"}
    err = p.stderr.strip().splitlines()
    last = err[-1] if err else ""
    if "MemoryError" in p.stderr or "std::bad_alloc" in p.stderr or p.returncode in (-9, -6):
        outcome = "oom"
    elif "Traceback" in p.stderr:
        outcome = "traceback"
    elif p.returncode == 2:
        outcome = "error" if len(err) == 1 else "error, not one line"
    elif p.returncode == 0:
        outcome = "none" if p.stdout.strip().endswith("none") else _finite(row, out)
    else:
        outcome = f"exit {p.returncode}"
    msg = last if outcome in ("error", "traceback", "oom") or p.returncode else (p.stdout.strip().splitlines() or [""])[-1]
    return {**row, "outcome": outcome, "message": msg[:220]}


def _finite(row: dict, out: str) -> str:
    path = Path(out) / "o.npy"
    if "argv" in row and row["argv"][0] == "recon":
        target = Path(row["argv"][row["argv"].index("-o") + 1])
        path = target if target.suffix == ".npy" else path
        if path.exists():
            ok = bool(np.all(np.isfinite(np.load(path))))
            if Path(out) in path.parents:
                path.unlink()
            return "ok" if ok else "nonfinite"
    return "ok"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "reliability_matrix.md"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "in"
        out = Path(tmp) / "out"
        d.mkdir()
        out.mkdir()
        f = _files(d)
        rows = [r for r in cases(f, str(out)) if args.only in r["case"]]
        results = []
        for r in rows:
            res = run_case(r, str(out))
            results.append(res)
            print(json.dumps({k: res[k] for k in ("interface", "case", "expected", "outcome", "message")}), flush=True)
    bad = [r for r in results if r["outcome"] in ("traceback", "hang", "oom", "nonfinite") or r["outcome"] != r["expected"]]
    lines = ["| # | interface | case | expected | outcome | message |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        m = r["message"].replace("|", "\\|").replace(tmp, "…")
        lines.append(f"| {i} | {r['interface']} | {r['case']} | {r['expected']} | {r['outcome']} | {m} |")
    if not args.only:
        Path(args.out).write_text("# Bad-input matrix\n\nGenerated by `.venv/bin/python benchmarks/bad_inputs.py`; "
                                  f"{len(results)} cases, {len(bad)} not as expected.\n\n" + "\n".join(lines) + "\n")
    print(f"{len(results)} cases, {len(bad)} not as expected", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
