"""Command line: ``napari-unrollrecon {recon,mask,bench,methods}`` (also ``python -m napari_unrollrecon``).

The contract (stable for scripts):

* ``recon INPUT -o OUTPUT --method NAME`` reconstructs one file or every file of a folder (sorted
  by name). OUTPUT ``.npy`` holds float32 magnitudes (N, H, W) - (N, T, H, W) for dynamic data -
  on the intensity scale of the input; ``.h5`` and ``.tif`` also carry the metadata.
* ``mask`` makes a sampling mask, saves it (.npy/.mat) and optionally a PNG preview.
* ``bench`` runs methods × masks × ratios (or × views for CT) over a dataset and writes markdown
  and CSV tables of mean ± std PSNR/SSIM and seconds per slice.
* ``methods`` lists the methods and their parameters.
* ``gui`` opens napari with the reconstruction dock and a sample dataset.

Exit status: 0 success, 2 bad usage or unusable input (message on stderr), 1 unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

EXIT_BAD_INPUT = 2


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line (the full usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------------- argument parsing
def _add_mask_options(p: argparse.ArgumentParser, ratio_default="0.25"):
    from napari_unrollrecon.physics.masks import MASK_KINDS

    g = p.add_argument_group("sampling mask (MRI)")
    g.add_argument("--mask", default=None, choices=MASK_KINDS, metavar="TYPE",
                   help=f"mask family: {', '.join(MASK_KINDS)} (default: cartesian for image input; "
                   "measured k-space keeps its own sampling unless a mask is given)")
    g.add_argument("--ratio", default=ratio_default,
                   help="sampling ratio as a fraction (0.25) or a percentage (25) (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="mask random seed (default: %(default)s)")
    g.add_argument("--center-fraction", type=float, default=None,
                   help="fully sampled centre as a fraction of the width (default: per mask family)")
    g.add_argument("--mask-file", default=None, metavar="FILE",
                   help="load the mask from .npy/.mat/.png instead (centred or DC-at-corner, detected)")
    g.add_argument("--mask-key", default=None, help="variable name inside a .mat mask file")


def _parser() -> argparse.ArgumentParser:
    from napari_unrollrecon import __version__

    ap = _Parser(prog="napari-unrollrecon", description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("recon", help="reconstruct a file or a folder of files",
                       description="Reconstruct undersampled MRI or sparse-view CT data. An image input is turned into "
                       "simulated measurements with the given mask or views (noise-free unless --noise); k-space or "
                       "sinogram input is used as measured.")
    r.add_argument("input", help="input file or folder (.npy .npz .png .tif .mat .h5 .dcm)")
    r.add_argument("-o", "--output", required=True, help="output file: .npy (float32 magnitudes), .h5 or .tif")
    r.add_argument("--method", required=True, help="method name (see `napari-unrollrecon methods`)")
    _add_mask_options(r)
    r.add_argument("--views", type=int, default=None, help="CT: number of views over 180° (default 60 for images)")
    r.add_argument("--modality", default="auto", choices=("auto", "mri", "dmri", "ct"),
                   help="auto: sinogram input, --views or a CT-only method mean ct; a 3D input means dmri")
    r.add_argument("--input-kind", default="auto", choices=("auto", "image", "kspace", "sinogram"),
                   help="what the input holds (default: detected)")
    r.add_argument("--key", default=None, help="variable / dataset name inside .mat/.npz/.h5 input")
    r.add_argument("--slice", type=int, default=None, dest="slice_index", help="slice of an .h5 k-space volume")
    r.add_argument("--frames", choices=("auto", "first", "last"), default="auto",
                   help="frame axis of a 3D series: auto = the short axis (MATLAB H×W×T is moved first; "
                        "the reader says so), first = (T, H, W), last = (H, W, T)")
    r.add_argument("--noise", type=float, default=0.0,
                   help="complex Gaussian noise, relative to the RMS of the measurements (default 0)")
    r.add_argument("--weights", default=None, help="weights file (.safetensors) for a learned method")
    r.add_argument("--reference", default=None, help="ground-truth image(s) to report PSNR/SSIM against")
    r.add_argument("--metric-convention", default="range",
                   help="range (default) | cgpd | gdunet | gdunet-ct | hggdp | ddugm (see docs)")
    r.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="method parameter, repeatable (e.g. --param lam=0.01 --param iterations=200)")
    r.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    r.add_argument("--trajectory", default=None, metavar="FILE.gif|FILE.mp4",
                   help="also save the stage stack (of the first input slice) as an animated GIF or MP4 with "
                        "method, stage and PSNR (with --reference) burnt in; at most 120 evenly spread stages")
    r.add_argument("--fps", type=float, default=4.0, help="frames per second of --trajectory (default 4)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    m = sub.add_parser("mask", help="make, preview and save a sampling mask")
    m.add_argument("--shape", type=int, nargs="+", default=[256, 256], metavar="N",
                   help="H W, or T H W for a k-t mask (a different pattern per frame)")
    _add_mask_options(m)
    m.add_argument("-o", "--output", default=None, help="save as .npy or .mat (key mask_matrix)")
    m.add_argument("--uncentred", action="store_true", help="save with DC at [0,0] (CGPD-CSNet/ISTA-Net layout)")
    m.add_argument("--preview", default=None, help="write a PNG preview")

    b = sub.add_parser("bench", help="methods × masks × ratios over a dataset -> markdown + CSV")
    b.add_argument("data", help="folder (or file) of reference images")
    b.add_argument("--methods", default="zero-filled,tv,l1-wavelet", help="comma-separated method names")
    b.add_argument("--masks", default="cartesian",
                   help="comma-separated mask families, or file:PATTERN with {pct} for the ratio in percent, "
                   "e.g. file:masks/mask_{pct}.mat")
    b.add_argument("--ratios", default="10,20,30,40,50", help="comma-separated ratios in percent")
    b.add_argument("--views", default=None, help="CT: comma-separated view counts (switches to CT)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--limit", type=int, default=None, help="use only the first N images")
    b.add_argument("--downsample", type=int, default=1, metavar="N",
                   help="average N×N pixel blocks of each reference first (e.g. 2: 512² CT slices at 256²)")
    b.add_argument("--dynamic", action="store_true",
                   help="references are cine series (frames, H, W): 3-D files, or frame files grouped by --group")
    b.add_argument("--group", default=None, metavar="REGEX",
                   help="dynamic: stack a folder's 2-D files into series by the regex's first group, e.g. "
                        "'p33t\\d+z(\\d)' (one series per slice, frames in name order)")
    b.add_argument("--key", default=None, help="variable name inside .mat/.h5 reference files")
    b.add_argument("--fit", default=None, metavar="H,W", help="centre-crop or zero-pad every reference to H×W")
    b.add_argument("--frames", type=int, default=None, help="dynamic: use only the first N frames of each series")
    b.add_argument("--tile-mask-frames", action="store_true",
                   help="dynamic: repeat a k-t mask file with fewer frames than the series cyclically")
    b.add_argument("--metric-convention", default="range")
    b.add_argument("--param", action="append", default=[], metavar="METHOD:NAME=VALUE",
                   help="method parameter, repeatable, e.g. tv:lam=0.02")
    b.add_argument("--weights", default=None, help="weights file for learned methods")
    b.add_argument("--device", default="auto")
    b.add_argument("-o", "--output", default="bench", help="output prefix: writes PREFIX.md and PREFIX.csv")
    b.add_argument("-q", "--quiet", action="store_true")

    for p in (r, m, b):
        p.add_argument("--memory-limit", default=None, metavar="SIZE",
                       help="refuse reads and runs estimated to need more memory (e.g. 8G; 0 = no limit; default "
                            "half the available memory, or $UNROLLRECON_MEMORY_LIMIT)")
        p.add_argument("--debug", action="store_true", help="show the full traceback of an error")

    sub.add_parser("methods", help="list methods, modalities and parameters")

    g = sub.add_parser("gui", help="open napari with the reconstruction dock and a sample loaded")
    g.add_argument("--sample", default="mri_phantom", choices=("mri_phantom", "cine_phantom", "ct_phantom", "none"),
                   help="sample dataset to open (default: %(default)s)")
    g.add_argument("--screenshot", default=None, help="save a window screenshot to this PNG and quit")
    return ap


# ------------------------------------------------------------------------- helpers
def _params(items: list[str], spec=None) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise CLIError(f"--param {item!r} must look like NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    if spec is not None:
        from napari_unrollrecon.methods.base import LiveParams

        try:
            valid = LiveParams(spec.params, out)  # validates names and ranges
        except ValueError as e:
            raise CLIError(f"{spec.name}: {e}") from None
        # only what the user set: the method fills in the defaults of the data's modality
        return {k: valid[k] for k in out}
    return out


def _mask_settings(args):
    from napari_unrollrecon.engine.pipeline import MaskSettings, parse_ratio

    return MaskSettings(kind=args.mask or "cartesian", ratio=parse_ratio(args.ratio), seed=args.seed,
                        center_fraction=args.center_fraction, file=args.mask_file, key=args.mask_key)


def _progress(total, desc, quiet):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=quiet, unit="stage", leave=False, file=sys.stderr)


def _inputs(args):
    from napari_unrollrecon.engine import io

    kind = None if args.input_kind == "auto" else args.input_kind
    loaded = io.read_many(args.input, kind=kind or "auto", key=args.key, slice_index=args.slice_index,
                          frames=args.frames)
    if not loaded:
        raise CLIError(f"no readable data files in {args.input}")
    return loaded


def _expand(loaded, modality):
    """Split stacks into single problems: 3D image stacks are slices unless the data is dynamic."""
    for item in loaded:
        d = item.data
        if modality != "dmri" and d.ndim == 3:
            for i in range(d.shape[0]):
                yield item, d[i]
        else:
            yield item, d


# ------------------------------------------------------------------------- commands
def cmd_recon(args) -> int:
    from napari_unrollrecon.engine import io, registry
    from napari_unrollrecon.engine.device import pick_device
    from napari_unrollrecon.engine.pipeline import build_problem, infer_modality
    from napari_unrollrecon.engine.stream import Throttle, stream

    try:
        spec = registry.get(args.method)
    except KeyError as e:
        raise CLIError(str(e.args[0])) from None
    params = _params(args.param, spec)
    if args.weights:
        if not spec.learned:
            raise CLIError(f"method {spec.name!r} is not a learned method and takes no --weights")
        params["weights"] = args.weights
    device = pick_device(args.device)
    io.check_output(args.output, [args.input, args.reference, args.mask_file, args.weights])
    if args.trajectory:
        from napari_unrollrecon.engine import export

        export.check_path(args.trajectory, [args.input, args.reference, args.mask_file, args.weights])
        if not (args.fps > 0 and np.isfinite(args.fps)):
            raise CLIError(f"--fps must be positive, got {args.fps}")
    recorder = None
    loaded = _inputs(args)
    modality = infer_modality(spec.modalities, loaded[0].kind, loaded[0].data.ndim, args.views, args.modality)
    if modality not in spec.modalities:
        raise CLIError(f"method {spec.name!r} handles {', '.join(spec.modalities)} data, not {modality}")
    refs = None
    if args.reference:
        refs = [d for _, d in _expand(io.read_many(args.reference, kind="image"), modality)]
    mask = _mask_settings(args) if modality != "ct" else None
    if loaded[0].kind == "kspace" and args.mask is None and args.mask_file is None:
        mask = None  # measured k-space without an explicit mask keeps its own sampling pattern
    outputs, records, samples, stds = [], [], [], []
    items = list(_expand(loaded, modality))
    if refs is not None and len(refs) != len(items):
        raise CLIError(f"--reference has {len(refs)} images but the input has {len(items)}")
    for i, (item, data) in enumerate(items):
        problem, desc = build_problem(data, item.kind, modality, mask, args.views, device, args.noise, args.seed + i)
        ref = refs[i] if refs is not None else None
        if ref is not None and np.shape(ref) != tuple(problem.image_shape):
            raise CLIError(f"reference shape {np.shape(ref)} does not match the image shape {problem.image_shape}")
        # progress ≤ 10 updates/s: a 1000-step sampler materialises only the images it reports
        gen = stream(spec, problem, params, reference=ref, convention=args.metric_convention, ssim_every=10**9,
                     throttle=Throttle(max_rate=10, keep_all=0))
        bar = None
        if args.trajectory and i == 0:
            recorder = export.Recorder(spec.name, ref, args.metric_convention)
        try:
            while True:
                u = next(gen)
                if recorder is not None and i == 0:
                    recorder.add(u)
                if bar is None:
                    bar = _progress(u.total, f"{spec.name} {i + 1}/{len(items)}", args.quiet)
                bar.update(1)
                if u.metrics:
                    bar.set_postfix(psnr=f"{u.metrics['psnr']:.2f}")
        except StopIteration as stop:
            result = stop.value
        finally:
            if bar is not None:
                bar.close()
        outputs.append(result.image.astype(np.float32))
        samples.append(result.samples)
        stds.append(result.std)
        rec = {"source": item.meta.get("source", args.input), **desc, "seconds": round(result.seconds, 4)}
        rec.update({k: round(v, 6) for k, v in result.metrics.items()})
        records.append(rec)
        if result.meta.get("note"):
            print(f"warning: {result.meta['note']}", file=sys.stderr)
        if result.metrics and not args.quiet:
            m = result.metrics
            print(f"{Path(str(rec['source'])).name}: PSNR {m['psnr']:.2f} dB  SSIM {m.get('ssim', float('nan')):.4f}"
                  f"  ({result.seconds:.2f} s)", file=sys.stderr)
    used = {k: v for k, v in result.params.items() if k != "weights"} | ({"weights": str(args.weights)} if args.weights else {})
    meta = {"method": spec.name, "params": used, "modality": modality,
            "device": str(device), "slices": records}
    extra = {}
    if all(s is not None for s in samples) and Path(args.output).suffix.lower() in (".h5", ".hdf5"):
        extra["samples"] = np.stack(samples)  # (slices, K, ...) posterior samples
        if all(s is not None for s in stds):
            extra["std"] = np.stack(stds).astype(np.float32)
    path = io.write(args.output, np.stack(outputs), meta, extra=extra)
    if not args.quiet:
        print(f"wrote {path} {np.stack(outputs).shape}", file=sys.stderr)
    if recorder is not None:
        _write_trajectory(args, recorder, len(items))
    return 0


def _write_trajectory(args, recorder, n_items: int) -> None:
    from napari_unrollrecon.engine import export

    path = export.write_trajectory(args.trajectory, recorder.panel(), fps=args.fps)
    if not args.quiet:
        which = f" (the first of {n_items} slices)" if n_items > 1 else ""
        print(f"wrote {path}: {len(recorder.frames)} stages{which}", file=sys.stderr)


def cmd_mask(args) -> int:
    from napari_unrollrecon.physics import masks

    ms = _mask_settings(args)
    if len(args.shape) not in (2, 3):
        raise CLIError("--shape takes H W or T H W")
    if args.preview and Path(args.preview).suffix.lower() != ".png":
        raise CLIError(f"--preview writes a PNG picture; give a .png name, not {Path(args.preview).name!r}")
    mask, desc = ms.make(tuple(args.shape))
    print(f"{desc['mask']} mask {tuple(mask.shape)}: realised ratio {desc['ratio']:.4f}"
          + (f" (requested {ms.ratio:.4f})" if not ms.file else ""))
    if args.output:
        masks.save_mask(args.output, mask, uncentred=args.uncentred)
        print(f"saved {args.output} ({'DC at [0,0]' if args.uncentred else 'centred'})")
    if args.preview:
        masks.mask_preview_png(mask, args.preview, title=f"{desc['mask']} {desc['ratio']:.1%}")
        print(f"preview {args.preview}")
    return 0


def cmd_bench(args) -> int:
    from napari_unrollrecon.engine import bench

    table = bench.run_bench(
        data=args.data,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        masks=[m.strip() for m in args.masks.split(",") if m.strip()],
        ratios=_numbers(args.ratios, "--ratios"),
        downsample=args.downsample, dynamic=args.dynamic, group=args.group, key=args.key,
        fit=tuple(int(v) for v in args.fit.split(",")) if args.fit else None, frames=args.frames,
        mask_file_frames="tile" if args.tile_mask_frames else "exact",
        views=[int(v) for v in args.views.split(",")] if args.views else None,
        seed=args.seed, limit=args.limit, convention=args.metric_convention,
        params=bench.parse_method_params(args.param), weights=args.weights,
        device=args.device, quiet=args.quiet,
    )
    md, csv = bench.write_tables(table, args.output, command=" ".join(["napari-unrollrecon", *sys.argv[1:]]))
    print(Path(md).read_text())
    print(f"wrote {md} and {csv}", file=sys.stderr)
    return 0


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"{option} takes comma-separated numbers (e.g. 10,20,30), got {text!r}") from None


def cmd_methods(args) -> int:
    from napari_unrollrecon.engine import registry

    for name in registry.names():
        spec = registry.get(name)
        print(f"{name:12s} {spec.title}  [{', '.join(spec.modalities)}]{'  (learned)' if spec.learned else ''}")
        for p in spec.params:
            extra = f" in [{p.low}, {p.high}]" if p.low is not None else ""
            extra += f" one of {list(p.choices)}" if p.choices else ""
            print(f"    {p.name}={p.default!r} ({p.kind}{extra}{', live' if p.live else ''}) {p.help or p.label}")
    return 0


def cmd_gui(args) -> int:
    """The main job: napari with our dock and a sample. Lives here (top floor) so the core stays Qt-free."""
    import napari

    viewer = napari.Viewer(title="napari-unrollrecon")
    from qtpy.QtWidgets import QApplication

    screen = QApplication.primaryScreen().availableGeometry()
    viewer.window.resize(min(1500, screen.width()), min(950, screen.height()))  # room for the dock
    if args.sample != "none":
        viewer.open_sample("napari-unrollrecon", args.sample)
    viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
    viewer.reset_view()
    if args.screenshot:
        from qtpy.QtCore import QTimer

        def shoot():
            viewer.screenshot(args.screenshot, canvas_only=False)
            viewer.close()

        QTimer.singleShot(1500, shoot)
    napari.run()
    return 0


COMMANDS = {"gui": cmd_gui, "recon": cmd_recon, "mask": cmd_mask, "bench": cmd_bench, "methods": cmd_methods}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # usage errors (already printed on one line), --help, --version
        return int(stop.code or 0)
    from napari_unrollrecon.engine import memory
    from napari_unrollrecon.engine.io import UnusableFileError
    from napari_unrollrecon.physics.notices import listening

    debug, saved = getattr(args, "debug", False), os.environ.get(memory.ENV)
    try:
        if getattr(args, "memory_limit", None) is not None:
            memory.parse_size(args.memory_limit)  # a bad size is refused before anything runs
            os.environ[memory.ENV] = args.memory_limit  # for this command only (main may be called in-process)
        with listening(lambda text: None if getattr(args, "quiet", False) else print(text, file=sys.stderr)):
            return COMMANDS[args.command](args)  # slow steps (a CT projector's first build) say so
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CLIError, UnusableFileError, ValueError, FileNotFoundError, MemoryError, OSError, RuntimeError) as e:
        if debug:
            raise
        print(f"napari-unrollrecon {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if saved is None:
            os.environ.pop(memory.ENV, None)
        else:
            os.environ[memory.ENV] = saved


def _one_line(e: BaseException) -> str:
    """The message of ``e`` on one line; what a bare MemoryError / OSError means, said plainly."""
    if isinstance(e, MemoryError):
        return ("out of memory" + (f" ({e})" if str(e) else "") + "; use a smaller input or lower "
                "--memory-limit so the run is refused before it starts")
    if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) and e.strerror:
        return f"{e.strerror}" + (f": {e.filename}" if e.filename else "")
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, (CLIError, ValueError, FileNotFoundError)) else f"{type(e).__name__}: {text}"
