"""Constants and small helpers the dock's parts share."""

from __future__ import annotations

import re


_NONE = "(none)"
_AUTO_REF = "(input image = ground truth)"
_GENERATED = "(generated)"
_KIND_CHOICES = ("auto", "image", "kspace", "sinogram")
_MASK_KINDS_FALLBACK = ("cartesian", "equispaced", "radial", "random", "gaussian", "poisson")
_PBAR_DELAY_MS = 700  # runs shorter than this get no progress bar (creating one stalls ~0.1 s)
_FORM_MIN_HEIGHT = 56  # px: about two rows
_DOCK_WIDTH = 430  # px: the dock's width (texts wrap, combo boxes cut long layer names)
_DOCK_MIN_WIDTH = 320
_FORM_MAX_HEIGHT = 260  # long parameter lists scroll instead of pushing Run off screen
#: every character our canvas texts use: vispy renders a glyph the first time it is drawn
#: (~10 ms each with software OpenGL), so they are drawn once, invisibly, when the dock opens
_GLYPHS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
           " .,:;!?'\"/\\()[]{}|%+-=<>_#&*~^@$·–—…−×²³µλσ‖≥≤✓°")


#: Per-stage scalars a method reports that the status line shows (learned step sizes, thresholds).
_INFO_SHOWN = ("eta", "beta", "tau_lambda", "eps_mean", "eta1", "eta2")


def _mask_kinds():
    try:
        from napari_unrollrecon.physics.masks import MASK_KINDS
    except ImportError:  # pragma: no cover - only while the masks module is missing
        return _MASK_KINDS_FALLBACK
    return tuple(MASK_KINDS)


def _notify(message: str, error: bool = True) -> None:
    """A napari notification (a toast, never a traceback dialog)."""
    from napari.utils.notifications import show_error, show_info

    (show_error if error else show_info)(message)


_LONG_TOKEN = re.compile(r"\S{48,}")  # longer than a line of the dock


def _breakable(text: str, n: int = 40) -> str:
    """Zero-width spaces every ``n`` characters of long unbroken tokens (paths, layer names): a
    word-wrapped label can then break them instead of widening the dock."""
    return _LONG_TOKEN.sub(lambda m: "\u200b".join(m[0][i:i + n] for i in range(0, len(m[0]), n)), text)


def _short(name: str, n: int = 34) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


class _EmptySpec:
    """Stand-in when no method fits the modality: an empty form."""

    name = ""
    title = ""
    params = ()
    learned = False

    def defaults(self, modality=None):
        return {}
