"""Export a run's trajectory - its stage stack - as an animated GIF or an MP4, captions burnt in.

A :class:`Panel` is one stack of 2D frames with a caption per frame (method, stage, PSNR when
known); several panels are laid side by side (a Compare, or reference | stages | |error|),
shorter ones holding their last frame. :func:`render` turns panels into RGB frames (small images
enlarged by an integer factor so the caption stays legible; a caption band above each panel,
wrapped at ``·``); :func:`write_trajectory` writes them through :func:`.io.atomic_write`: GIF
with Pillow (looping), MP4 (H.264, yuv420p) with the ffmpeg binary that ``imageio-ffmpeg``
ships. :class:`Recorder` collects the frames of a streaming run (the CLI's ``--trajectory``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_unrollrecon.engine import io

TRAJECTORY_EXTS = (".gif", ".mp4")
MAX_FRAMES = 120  # longer trajectories are thinned evenly (first and last kept)
MIN_WIDTH = 256  # px: narrower panels are enlarged by an integer factor
FONT_PX = 14
_GAP = 4  # px between panels
_MACRO = 16  # MP4 frame sides are padded to a multiple of this (H.264 macroblocks)


@dataclass
class Panel:
    """Frames ``(n, H, W)`` with one caption each; ``limits`` the grey range (default: the 0.5–99.5
    percentiles of all frames, so a stage-by-stage brightening stays visible)."""

    frames: np.ndarray
    captions: list[str]
    limits: tuple[float, float] | None = None

    def __post_init__(self):
        self.frames = np.asarray(self.frames, dtype=np.float32)
        if self.frames.ndim == 2:
            self.frames = self.frames[None]
        if self.frames.ndim != 3 or len(self.frames) == 0:
            raise ValueError(f"a trajectory panel needs frames (n, H, W); got shape {self.frames.shape}")
        self.captions = list(self.captions) if not isinstance(self.captions, str) else [self.captions]
        if len(self.captions) not in (1, len(self.frames)):
            raise ValueError(f"{len(self.captions)} captions for {len(self.frames)} frames")


def caption(method: str, stage: int | None = None, total: int | None = None, psnr: float | None = None) -> str:
    """``"tv · stage 3/100 · PSNR 27.31 dB"`` (parts that are unknown are left out)."""
    parts = [method]
    if stage is not None:
        parts.append(f"stage {stage}/{total}" if total else f"stage {stage}")
    if psnr is not None and np.isfinite(psnr):
        parts.append(f"PSNR {psnr:.2f} dB")
    return " · ".join(parts)


def reference_panel(reference, text: str = "reference") -> Panel:
    """A one-frame panel of the reference, its grey range its min…max (give it to the stage
    panels beside it too, so they are shown on the same scale)."""
    ref = plane(np.abs(np.asarray(reference))).astype(np.float32)
    return Panel(ref, text, limits=(float(ref.min()), float(ref.max())))


def plane(image: np.ndarray) -> np.ndarray:
    """The 2D image a trajectory shows: a cine's (T, H, W) gives its first frame."""
    image = np.asarray(image)
    while image.ndim > 2:
        image = image[0]
    return image


def check_path(path, inputs=()) -> Path:
    """The trajectory path if we can write it (.gif or .mp4, not a folder, not one of ``inputs``
    nor inside an input folder: :func:`.io.check_output`), else a one-line ValueError."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in TRAJECTORY_EXTS:
        raise ValueError(f"cannot write a trajectory to {path.name}: use a .gif or .mp4 file name")
    io.check_output(path, inputs, exts=TRAJECTORY_EXTS)
    return path


def keep_stage(stage: int, total: int, max_frames: int = MAX_FRAMES) -> bool:
    """Whether ``stage`` of ``total`` is one of ≤ ``max_frames`` evenly spread stages (1 and the
    last always)."""
    if total <= max_frames or stage in (1, total):
        return True
    step = (total - 1) / (max_frames - 1)
    return stage == 1 + round(round((stage - 1) / step) * step)


def _thin(n: int, max_frames: int) -> list[int]:
    """≤ ``max_frames`` evenly spread indices of ``n`` (first and last kept)."""
    if n <= max_frames:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_frames).round().astype(int).tolist()))


class Recorder:
    """Collects a streaming run's frames for a trajectory: ``add(update)`` per Update.

    ``on_grid``: keep only ≤ ``max_frames`` evenly spread stages (a run streaming every stage,
    like the CLI's); otherwise keep every update given (already throttled, like the dock's shown
    ones) and halve the older history whenever it reaches twice ``max_frames``. PSNR comes from
    the update's metrics, else from ``reference``.
    """

    def __init__(self, method: str, reference=None, convention: str = "range", max_frames: int = MAX_FRAMES,
                 on_grid: bool = True):
        self.method, self.convention, self.max_frames, self.on_grid = method, convention, max_frames, on_grid
        self.reference = None if reference is None else np.abs(np.asarray(reference)).astype(np.float32)
        self.frames: list[np.ndarray] = []
        self.captions: list[str] = []

    def add(self, update) -> None:
        if self.on_grid and not keep_stage(update.stage, update.total, self.max_frames):
            return
        psnr = (update.metrics or {}).get("psnr")
        if psnr is None and self.reference is not None:
            from napari_unrollrecon.engine import metrics

            psnr = metrics.evaluate(update.image, self.reference, self.convention, with_ssim=False)["psnr"]
        self.frames.append(plane(update.image).astype(np.float32, copy=True))
        self.captions.append(caption(self.method, update.stage, update.total, psnr))
        if len(self.frames) >= 2 * self.max_frames:
            keep = list(range(0, len(self.frames) - 1, 2)) + [len(self.frames) - 1]
            self.frames = [self.frames[i] for i in keep]
            self.captions = [self.captions[i] for i in keep]

    def panel(self) -> Panel:
        if not self.frames:
            raise ValueError(f"{self.method} produced no stage to export")
        limits = None if self.reference is None else reference_panel(self.reference).limits
        return Panel(np.stack(self.frames), self.captions, limits=limits)


# --------------------------------------------------------------------------- rendering
def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # pragma: no cover - Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font, width: int) -> list[str]:
    """Lines of ``text`` no wider than ``width`` px, broken after ``·`` where needed."""
    lines, line = [], ""
    for part in text.split(" · "):
        joined = f"{line} · {part}" if line else part
        if line and font.getlength(joined) > width:
            lines.append(line)
            line = part
        else:
            line = joined
    return lines + [line]


def _grey(frame: np.ndarray, limits: tuple[float, float], scale: int) -> np.ndarray:
    lo, hi = limits
    g = np.clip((frame - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    g = (g * 255 + 0.5).astype(np.uint8)
    return np.repeat(np.repeat(g, scale, 0), scale, 1) if scale > 1 else g


def _limits(panel: Panel) -> tuple[float, float]:
    if panel.limits is not None:
        return tuple(map(float, panel.limits))
    finite = panel.frames[np.isfinite(panel.frames)]
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(finite, [0.5, 99.5])
    return (float(lo), float(hi)) if hi > lo else (float(finite.min()), float(finite.max()) or 1.0)


def render(panels: list[Panel] | Panel, min_width: int = MIN_WIDTH, max_frames: int = MAX_FRAMES,
           font_px: int = FONT_PX) -> list[np.ndarray]:
    """RGB uint8 frames ``(h, w, 3)``, all the same size: the panels side by side, each under its
    caption band; frame ``i`` shows each panel's frame ``i`` (or its last)."""
    from PIL import Image, ImageDraw

    panels = [panels] if isinstance(panels, Panel) else list(panels)
    if not panels:
        raise ValueError("nothing to export: no panels")
    h, w = panels[0].frames.shape[1:]
    if any(p.frames.shape[1:] != (h, w) for p in panels):
        raise ValueError("trajectory panels must have one image size; got "
                         + ", ".join(str(p.frames.shape[1:]) for p in panels))
    scale = max(1, math.ceil(min_width / w))
    pw, ph = w * scale, h * scale
    font = _font(font_px)
    line_h = font_px + 4
    wrapped = [[_wrap(c, font, pw - 8) for c in p.captions] for p in panels]
    band = 6 + line_h * max(len(lines) for per in wrapped for lines in per)
    limits = [_limits(p) for p in panels]
    n = max(len(p.frames) for p in panels)
    size = (len(panels) * pw + (len(panels) - 1) * _GAP, band + ph)
    out = []
    for i in _thin(n, max_frames):
        canvas = Image.new("RGB", size, (0, 0, 0))
        draw = ImageDraw.Draw(canvas)
        for k, p in enumerate(panels):
            j = min(i, len(p.frames) - 1)
            x0 = k * (pw + _GAP)
            canvas.paste(Image.fromarray(_grey(p.frames[j], limits[k], scale)).convert("RGB"), (x0, band))
            lines = wrapped[k][min(j, len(wrapped[k]) - 1)]
            for m, text in enumerate(lines):
                draw.text((x0 + 4, 3 + m * line_h), text, fill=(255, 255, 255), font=font)
        out.append(np.asarray(canvas))
    return out


# --------------------------------------------------------------------------- writing
def _padded(frame: np.ndarray, multiple: int) -> np.ndarray:
    h, w = frame.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    return np.pad(frame, ((0, ph), (0, pw), (0, 0))) if ph or pw else frame


def _write_gif(tmp: Path, frames: list[np.ndarray], fps: float) -> None:
    import imageio.v3 as iio

    iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=int(round(1000 / fps)), loop=0)


def _write_mp4(tmp: Path, frames: list[np.ndarray], fps: float) -> None:
    import imageio.v2 as imageio

    try:
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=1, quality=8,
                                    ffmpeg_log_level="error")
    except (ImportError, ValueError, RuntimeError) as exc:
        raise ValueError(f"cannot write MP4 ({exc}); install imageio-ffmpeg, or export a .gif") from None
    with writer:
        for frame in frames:
            writer.append_data(_padded(frame, _MACRO))


def write_trajectory(path, panels: list[Panel] | Panel | list[np.ndarray], fps: float = 4.0, **render_kw) -> Path:
    """Render ``panels`` (or take ready RGB frames) and write them to ``path`` (.gif or .mp4),
    atomically (:func:`.io.atomic_write`). Returns the path written."""
    path = check_path(path)
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"frames per second must be positive, got {fps}")
    frames = panels
    if isinstance(panels, Panel) or (isinstance(panels, (list, tuple)) and panels and isinstance(panels[0], Panel)):
        frames = render(panels, **render_kw)
    writer = _write_gif if path.suffix.lower() == ".gif" else _write_mp4
    return io.atomic_write(path, lambda tmp: writer(tmp, list(frames), fps))


def read_frames(path) -> np.ndarray:
    """The frames of a written GIF or MP4 as ``(n, h, w, 3)`` uint8 (tests, checks)."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        import imageio.v3 as iio

        frames = iio.imread(path, index=None)
        return frames[..., :3]
    import imageio.v2 as imageio

    with imageio.get_reader(path, format="FFMPEG") as reader:
        return np.stack([np.asarray(f)[..., :3] for f in reader])

