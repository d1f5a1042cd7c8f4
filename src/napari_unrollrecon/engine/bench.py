"""Benchmark driver: methods × masks × ratios (MRI) or methods × views (CT) over a dataset.

Every number in the README and in model cards comes from here, so anyone can rerun it. One mask
per (family, ratio) is used for all images (seeded), like the papers' fixed mask files; ``file:``
mask specs load published masks (``{pct}`` is replaced by the ratio in percent).

Peak memory (``peak_mem_mb``): the most memory the method needed beyond what the process held
when it started a slice, maximised over the slices of one setting (metrics are computed outside
the measured span). On CUDA it is
``torch.cuda.max_memory_allocated`` minus the allocation at the start (tensors only, not the
caching allocator's reserve). On the CPU it is the peak resident set size (Linux ``VmHWM``, reset
through ``/proc/self/clear_refs`` before each setting) minus the resident size at the start, so it
counts tensors, workspaces and allocator slack alike; where the peak cannot be reset, the growth
of ``getrusage`` ``ru_maxrss`` is used, which shows only memory beyond the process's earlier peak.
(``tracemalloc`` cannot be used: it does not see torch's allocations.)
"""

from __future__ import annotations

import csv
import re
import resource
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from napari_unrollrecon.engine import io, problems, registry
from napari_unrollrecon.engine.device import pick_device
from napari_unrollrecon.engine.metrics import evaluate
from napari_unrollrecon.engine.pipeline import MaskSettings, build_problem
from napari_unrollrecon.engine.stream import run

FIELDS = ["method", "mask", "setting", "n", "psnr_mean", "psnr_std", "ssim_mean", "ssim_std",
          "nmse_mean", "hfen_mean", "seconds_per_slice", "peak_mem_mb", "realised_ratio", "std_err_corr"]


def std_error_correlation(std: np.ndarray, image: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation between a stochastic method's pixel-wise std over its K samples and
    its |error|: how well the posterior spread points at the mistakes (1 = perfectly)."""
    err = np.abs(np.asarray(image, np.float64) - np.abs(np.asarray(reference, np.float64))).ravel()
    sd = np.asarray(std, np.float64).ravel()
    if sd.std() == 0 or err.std() == 0:
        return float("nan")
    return float(np.corrcoef(sd, err)[0, 1])


def parse_method_params(items: list[str]) -> dict[str, dict]:
    """``["tv:lam=0.02", "tv:iterations=200"]`` -> ``{"tv": {"lam": "0.02", "iterations": "200"}}``."""
    out: dict[str, dict] = defaultdict(dict)
    for item in items:
        head, _, value = item.partition("=")
        method, _, name = head.partition(":")
        if not (method and name and value):
            raise ValueError(f"--param {item!r} must look like METHOD:NAME=VALUE, e.g. tv:lam=0.02")
        out[method][name] = value
    return dict(out)


def _mask_for(spec: str, pct: float, seed: int) -> MaskSettings:
    if "|" in spec:  # a union, e.g. file:mask_R10.mat|file:mask_acs20.mat (R10 + 20 ACS lines)
        return _Union([_mask_for(part, pct, seed) for part in spec.split("|")], spec)
    if spec.startswith("file:"):
        pattern, _, key = spec[5:].partition("#")  # file:PATH#key names the variable in a .mat
        # {pct} → 10, 15, 8.5; a format spec pads: {pct:03g} → 010, 015 (HGGDP's mask_radial_015.mat)
        name = re.sub(r"\{pct(:[^}]*)?\}", lambda m: format(pct, (m.group(1) or ":g")[1:]), pattern)
        if not Path(name).exists():
            raise FileNotFoundError(f"mask file {name} (from pattern {pattern!r}) does not exist")
        return MaskSettings(file=name, key=key or None)
    return MaskSettings(kind=spec, ratio=pct / 100.0, seed=seed)


class _Union:
    """The union of several masks (``|`` in a bench mask spec)."""

    def __init__(self, parts, spec):
        self.parts, self.spec = parts, spec

    def make(self, shape):
        made = [p.make(shape) for p in self.parts]
        mask = np.maximum.reduce([m for m, _ in made])
        return mask, {"mask": self.spec, "ratio": float(mask.mean()), "parts": [d for _, d in made]}


def tile_frames(mask: np.ndarray, frames: int) -> np.ndarray:
    """A k-t mask with fewer frames than the series, repeated cyclically along time."""
    if mask.ndim != 3 or mask.shape[0] >= frames:
        return mask[:frames] if mask.ndim == 3 else mask
    return mask[np.arange(frames) % mask.shape[0]]


def _mask_label(spec: str) -> str:
    if "|" in spec:
        return " | ".join(_mask_label(p) for p in spec.split("|"))
    if spec.startswith("file:"):
        path = Path(spec[5:])
        return f"{path.parent.name}/{path.name} (mask files)"
    return spec


def _series(data, group: str | None, key: str | None) -> list[np.ndarray]:
    """Dynamic references (T, H, W): each 3-D file is a series; with ``group`` (a regex whose
    first group names the series), the 2-D files of a folder matching it are stacked in name order."""
    if not group:
        return [item.data for item in io.read_many(data, kind="image", key=key) if item.data.ndim == 3]
    groups: dict[str, list] = defaultdict(list)
    for f in io.list_data_files(data):
        m = re.search(group, f.name)
        if m:
            groups[m.group(1)].append(f)
    if not groups:
        raise ValueError(f"no file in {data} matches --group {group!r}")
    return [np.stack([io.read(f, kind="image").data for f in files]) for _, files in sorted(groups.items())]


def _images(data, limit, downsample: int = 1, dynamic: bool = False, group=None, key=None, fit=None,
            frames=None):
    if downsample < 1:
        raise ValueError(f"downsample must be a positive integer (1 = full resolution), got {downsample}")
    if dynamic:
        series = _series(data, group, key)
        if not series:
            raise ValueError(f"no (frames, H, W) series in {data}; give 3-D files or --group for frame files")
        series = [s[:frames] if frames else s for s in series[:limit]]  # limit None: all
        return [io.fit_shape(s, fit) for s in series] if fit else series
    items = io.read_many(data, kind="image", key=key)
    imgs = []
    for item in items:
        d = item.data
        imgs.extend(list(d) if d.ndim == 3 else [d])
    if not imgs:
        raise ValueError(f"no images found in {data}")
    imgs = imgs[:limit] if limit else imgs
    return [block_mean(x, downsample) for x in imgs] if downsample > 1 else imgs


def block_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Average n×n pixel blocks (trailing rows/columns that do not fill a block are dropped)."""
    if n < 1:
        raise ValueError(f"downsample must be a positive integer, got {n}")
    h, w = x.shape[0] // n * n, x.shape[1] // n * n
    if not h or not w:
        raise ValueError(f"cannot average {n}×{n} blocks of a {x.shape[0]}×{x.shape[1]} image")
    return x[:h, :w].reshape(h // n, n, w // n, n).mean(axis=(1, 3))


def run_bench(data, methods, masks=("cartesian",), ratios=(10, 20, 30, 40, 50), views=None, seed=0,
              limit=None, convention="range", params=None, weights=None, device="auto", quiet=False,
              downsample: int = 1, dynamic: bool = False, group: str | None = None, key: str | None = None,
              fit=None, frames: int | None = None, mask_file_frames: str = "exact"):
    """Run the grid and return a list of result rows (dicts with FIELDS).

    ``dynamic``: references are (T, H, W) series (3-D files, or 2-D frame files stacked by the
    ``group`` regex), optionally cut to ``frames`` and centre-cropped / zero-padded to ``fit``;
    ``mask_file_frames="tile"`` repeats a k-t mask file with fewer frames cyclically."""
    from tqdm import tqdm

    params = params or {}
    _check_grid(methods, params, limit, views)
    device = pick_device(device)
    imgs = _images(data, limit, downsample, dynamic, group, key, fit, frames)
    specs = [registry.get(m) for m in methods]
    settings = [("parallel", v) for v in views] if views else [(m, r) for m in masks for r in ratios]
    rows = []
    bar = tqdm(total=len(specs) * len(settings) * len(imgs), disable=quiet, desc="bench", unit="slice")
    for mask_spec, setting in settings:
        if views:
            problems_ = [build_problem(x, "image", "ct", views=setting, device=device)[0] for x in imgs]
            ratio = None
        else:
            mask, desc = _mask_for(mask_spec, setting, seed).make(imgs[0].shape)
            if mask_file_frames == "tile":
                mask = tile_frames(mask, imgs[0].shape[0])
            problems_ = [problems.mri_from_image(x, mask, device, meta=desc) for x in imgs]
            ratio = desc["ratio"]
        for spec in specs:
            p = dict(params.get(spec.name, {}))
            if spec.learned and weights:
                p["weights"] = weights
            stats = defaultdict(list)
            peak = PeakMemory(device)
            for x, prob in zip(imgs, problems_):
                peak.start()
                t0 = time.perf_counter()  # time the method alone; metrics come after
                res = run(spec, prob, p)
                stats["seconds"].append(time.perf_counter() - t0)
                peak.stop()
                for k, v in evaluate(res.image, x, convention).items():
                    stats[k].append(v)
                if res.std is not None:  # K ≥ 2 posterior samples
                    stats["std_err_corr"].append(std_error_correlation(res.std, res.image, x))
                bar.update(1)
            rows.append({
                "method": spec.name, "mask": "parallel-beam" if views else _mask_label(mask_spec),
                "setting": f"{setting} views" if views else ("mask file" if "file:" in mask_spec and "{pct" not in
                                                             mask_spec else f"{setting:g}%"), "n": len(imgs),
                "psnr_mean": np.mean(stats["psnr"]), "psnr_std": np.std(stats["psnr"]),
                "ssim_mean": np.mean(stats["ssim"]), "ssim_std": np.std(stats["ssim"]),
                "nmse_mean": np.mean(stats["nmse"]), "seconds_per_slice": np.mean(stats["seconds"]),
                "hfen_mean": np.mean(stats["hfen"]) if stats["hfen"] else None,  # hggdp convention
                "peak_mem_mb": peak.mb(), "realised_ratio": ratio,
                "std_err_corr": float(np.nanmean(stats["std_err_corr"])) if stats["std_err_corr"] else None,
            })
    bar.close()
    return rows


def _check_grid(methods, params, limit, views) -> None:
    """Refuse a meaningless grid before any work: unknown methods, parameters for methods that
    are not run, a limit below 1, fewer than 1 view."""
    known = registry.names()
    unknown = [m for m in methods if m not in known]
    if not methods or unknown:
        raise ValueError(f"unknown method(s) {unknown or '(none given)'}; available: {', '.join(known)}")
    stray = sorted(set(params) - set(methods))
    if stray:
        raise ValueError(f"--param given for {stray}, which --methods does not run ({', '.join(methods)})")
    if limit is not None and int(limit) < 1:
        raise ValueError(f"--limit must be at least 1 (the number of images to use), got {limit}")
    if views and min(int(v) for v in views) < 1:
        raise ValueError(f"every view count must be at least 1, got {list(views)}")


class PeakMemory:
    """Peak memory in MB above the level at each ``start()``, maximised over start/stop spans."""

    def __init__(self, device):
        self.device = device
        self.cuda = getattr(device, "type", str(device)).startswith("cuda")
        self.peak, self.base, self.resettable = 0.0, 0.0, False

    def start(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        self.resettable = _reset_peak_rss()
        self.base = _rss_kb("VmRSS") if self.resettable else _maxrss_kb()

    def stop(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)
            used = (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
        else:
            used = ((_rss_kb("VmHWM") if self.resettable else _maxrss_kb()) - self.base) / 1024
        self.peak = max(self.peak, used)

    def mb(self) -> float:
        return self.peak


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _rss_kb("VmHWM") is not None
    except OSError:
        return False


def _rss_kb(field: str):
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), flags=re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _maxrss_kb() -> float:
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux


def markdown(rows, command: str | None = None) -> str:
    """One table per mask family: methods as rows, ratios/views as columns, PSNR ± std / SSIM."""
    out = []
    if command:
        out += [f"Command: `{command}`", ""]
    for mask in dict.fromkeys(r["mask"] for r in rows):
        sub = [r for r in rows if r["mask"] == mask]
        cols = list(dict.fromkeys(r["setting"] for r in sub))
        out.append(f"**{mask}** ({sub[0]['n']} images) — PSNR dB (mean ± std) / SSIM; s/slice = mean seconds per "
                   "slice; peak MB = most memory above the starting level (RSS on CPU, tensors on CUDA)")
        out.append("")
        out.append("| method | " + " | ".join(cols) + " | s/slice | peak MB |")
        out.append("|---|" + "---|" * (len(cols) + 2))
        for method in dict.fromkeys(r["method"] for r in sub):
            cells, secs, mems = [], [], []
            for c in cols:
                r = next((r for r in sub if r["method"] == method and r["setting"] == c), None)
                hfen_ = f" / HFEN {r['hfen_mean']:.3f}" if r and r.get("hfen_mean") is not None else ""
                cells.append(f"{r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} / {r['ssim_mean']:.4f}{hfen_}" if r else "")
                if r:
                    secs.append(r["seconds_per_slice"])
                    mems.append(r.get("peak_mem_mb", float("nan")))
            out.append(f"| {method} | " + " | ".join(cells) + f" | {np.mean(secs):.3f} | {np.max(mems):.0f} |")
        corr = [(r["method"], r["setting"], r["std_err_corr"]) for r in sub if r.get("std_err_corr") is not None]
        if corr:
            out.append("")
            out.append("Correlation of the posterior std (K samples) with |error|: " + "; ".join(
                f"{m} {c}: r = {v:.3f}" for m, c, v in corr))
        out.append("")
    return "\n".join(out)


def write_tables(rows, prefix, command: str | None = None) -> tuple[Path, Path]:
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    md, csv_path = prefix.with_suffix(".md"), prefix.with_suffix(".csv")
    md.write_text(markdown(rows, command))
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return md, csv_path
