"""The napari side of the dock's results: reusable stage-stack layers and labelled panels.

* :class:`ResultView` - the image layer one method streams its stages into (axis "stage"),
  its |error| layer, and one hidden layer per extra map a method streams (CGPD-CSNet's
  correction e_ℓ, GDUNet's thresholds ε), each with the same stage axis. Both are created once and reused by later runs of that method:
  adding a layer costs a few hundred ms with software OpenGL, updating one a few ms.
* :class:`Turns` - deferred napari work (layer builds, folds, selections, a worker's start), one
  job per event-loop turn, so that no two land in the same stall.
* :class:`SliderRows` - keeps napari's slider row from shrinking while the dock is open (a
  shrinking row resizes and repaints the whole canvas).
* :class:`Panels` - lays layers out side by side (``layer.translate``) with a label strip
  above each panel, written by one Points layer with text. Used by Compare and by the run's
  side-by-side view (reference | stages | |error|).

Only called from the Qt main thread. The Qt-free parts (stacks, layout, captions) live in
:mod:`._controller`.
"""

from __future__ import annotations

import contextlib

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QWidget

from napari_unrollrecon._widgets import _controller as C

LABELS_NAME = "panel labels"
ERROR_CONTRAST = 0.2  # |error| layers show 0 .. 20% of the reference range
LATER_MS = 40  # deferred turns (Turns: |error| and extra-map builds, folds, selections) run this far apart
LABEL_PX = 52.0  # height of a panel's label strip on screen (two lines of 10 pt text)
LINE_PX = 23.0  # one more line of label text
#: Extra maps with a colour map of their own (the posterior std must not look like an |error|).
EXTRA_COLORMAPS = {"std": "viridis"}
#: Panel captions of known extra maps.
EXTRA_TITLES = {"std": "std over the K posterior samples\n(compare with |error|)"}


class Turns:
    """Deferred napari work (a layer build, a fold that resizes the canvas, a selection that
    switches the layer controls, a worker's start), one job per event-loop turn, each
    ``LATER_MS`` after the previous one ran: Qt runs every timer that is due in one pass, so
    jobs on timers of their own could land in the same stall and add up."""

    def __init__(self):
        self._jobs: list = []
        self._timer = None

    def add(self, job) -> None:
        self._jobs.append(job)
        if self._timer is None:
            self._timer = QTimer()
            self._timer.setSingleShot(True)
            self._timer.timeout.connect(self._next)
        if not self._timer.isActive():
            self._timer.start(LATER_MS)

    def _next(self) -> None:
        if self._jobs:
            job = self._jobs.pop(0)
            try:
                job()
            finally:
                if self._jobs:
                    self._timer.start(LATER_MS)

    def pending(self) -> bool:
        return bool(self._jobs)


#: The dock's one queue of deferred turns (main thread only).
TURNS = Turns()


def _alive(viewer, layer) -> bool:
    return layer is not None and layer in viewer.layers


def unwrapped(layer):
    """The layer behind napari's public-only proxy (a plugin's viewer hands out a new proxy on
    every access, so ``id`` and ``is`` do not identify a layer)."""
    return getattr(layer, "__wrapped__", layer)


def ours(layer, *kinds) -> bool:
    """Whether ``layer`` is one of the dock's outputs (of the given kinds, if any)."""
    kind = layer.metadata.get(C.META_KEY, {}).get("kind") if hasattr(layer, "metadata") else None
    return kind in (kinds or C.OUTPUT_KINDS)


def stage_axis(viewer, layer) -> int:
    """The viewer's dims axis that is the stage axis of ``layer`` (layers are right-aligned)."""
    return viewer.dims.ndim - layer.ndim


def spatial_labels(ndim: int) -> tuple[str, ...]:
    """Axis names of a stage stack: ("stage", "y", "x") or ("stage", "frame", "y", "x")."""
    return ("stage", *(("frame",) if ndim == 4 else ()), "y", "x")[:ndim]


def _robust_limits(stack: np.ndarray) -> tuple[float, float]:
    """Contrast for a map of any sign: 1st to 99th percentile (a few hot pixels do not wash it out)."""
    lo, hi = (float(v) for v in np.percentile(stack, [1, 99]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def set_translate(layer, yx: tuple[float, float]) -> None:
    t = [0.0] * layer.ndim
    t[-2], t[-1] = float(yx[0]), float(yx[1])
    if not np.allclose(layer.translate, t):
        layer.translate = t


def set_hidden_data(layer, data) -> None:
    """Replace a hidden layer's data so that its extent follows: napari re-computes a hidden
    layer's extent only when it is shown, so its old frames would keep stretching the slider.
    The layer is visible only inside the (blocked) data change: nothing is drawn."""
    with layer.events.visible.blocker():
        layer.visible = True
        layer.data = data
        layer.visible = False


@contextlib.contextmanager
def unselected_insert(viewer):
    """Layers added inside are not made the active layer: napari would switch the layer controls
    to the new layer's page (a Qt layout and style pass, ~20-30 ms under llvmpipe) for a helper
    layer the dock re-selects away from at once. Uses napari's ``_activate_on_insert`` flag when
    present; otherwise layers are added as usual."""
    layers = unwrapped(viewer.layers)
    before = getattr(layers, "_activate_on_insert", None)
    if before is None:
        yield
        return
    layers._activate_on_insert = False
    try:
        yield
    finally:
        layers._activate_on_insert = before


class SliderRows:
    """Keeps the row of napari's sliders from changing height while the dock is open: a slider
    that appears (a run's first stage stack), vanishes (a single-stage result after a stack) or
    is rebuilt (napari recreates every slider when the number of axes changes, all shown for a
    moment) resizes the canvas, and a resized canvas repaints in full (30-60 ms). One row is
    reserved from the start (empty until a stack arrives); more rows, once shown, stay until
    fewer slider axes exist (``ndim - ndisplay``). Uses napari's ``QtDims`` (private: without it
    nothing changes)."""

    def __init__(self, viewer):
        window = unwrapped(getattr(unwrapped(viewer), "window", None))
        self._dims = getattr(getattr(window, "_qt_viewer", None), "dims", None)
        self.px = 0
        if self._dims is not None and hasattr(self._dims, "SLIDERHEIGHT") and hasattr(self._dims, "dims"):
            self._dims.setMinimumHeight = self._set_minimum_height  # napari calls it from Python
            self.reserve = self._dims.SLIDERHEIGHT
            self._set_minimum_height(self._dims.minimumHeight())
        else:
            self._dims = None

    def _set_minimum_height(self, h) -> None:
        d = self._dims
        room = max(self.reserve, max(0, d.dims.ndim - d.dims.ndisplay) * d.SLIDERHEIGHT)
        self.px = min(max(int(h), self.px, self.reserve), room)
        QWidget.setMinimumHeight(d, self.px)

    def release(self) -> None:
        """napari's own sizing again (the dock closes)."""
        if self._dims is not None:
            del self._dims.setMinimumHeight
            update = getattr(self._dims, "_update_display", None)  # napari recomputes its height
            if update is not None:
                update()
            self._dims = None


class Occluded:
    """The user's layers that an opaque result covers exactly, hidden while a run streams.

    Each visible layer is drawn on every repaint even when nothing of it shows; with software
    OpenGL (llvmpipe) hiding the two sample layers under a result took 10-35 ms off the dock's
    longest stall (docs/gui.md). :meth:`restore` shows them again unless the user toggled one
    meanwhile (their choice wins)."""

    def __init__(self, viewer):
        self.viewer = viewer
        self.hidden: list = []
        self.touched: set[int] = set()
        self._ours = False

    def hide_under(self, result) -> list[str]:
        """Hide the layers below ``result`` that it covers; their names."""
        if self.hidden or not self._covers_anything(result):
            return []
        layers = list(self.viewer.layers)
        for layer in layers[:layers.index(result)]:
            if layer.visible and not ours(layer) and _within(layer, result):
                self.hidden.append(layer)
                layer.events.visible.connect(self._toggled)
                self._set(layer, False)
        return [layer.name for layer in self.hidden]

    def restore(self) -> None:
        for layer in self.hidden:
            layer.events.visible.disconnect(self._toggled)
            if id(unwrapped(layer)) not in self.touched and _alive(self.viewer, layer):
                self._set(layer, True)
        self.hidden, self.touched = [], set()

    def _covers_anything(self, result) -> bool:
        d = self.viewer.dims
        return (_alive(self.viewer, result) and result.visible and result.opacity >= 1.0
                and str(result.blending) in ("translucent", "translucent_no_depth", "opaque")
                and d.ndisplay == 2 and tuple(d.displayed) == (d.ndim - 2, d.ndim - 1))

    def _set(self, layer, visible: bool) -> None:
        self._ours = True
        try:
            layer.visible = visible
        finally:
            self._ours = False

    def _toggled(self, event) -> None:
        if not self._ours:
            self.touched.add(id(unwrapped(event.source)))


def _within(layer, result) -> bool:
    """Whether ``layer``'s last two world axes lie inside ``result``'s (both drawn, right-aligned)."""
    if getattr(layer, "ndim", 0) < 2 or layer.opacity <= 0:
        return False
    a, b = np.asarray(layer.extent.world)[:, -2:], np.asarray(result.extent.world)[:, -2:]
    return bool(np.all(a[0] >= b[0] - 1e-6) and np.all(a[1] <= b[1] + 1e-6))


class ResultView:
    """The layers of one method's runs: a stage stack and, with a reference, its |error| map."""

    def __init__(self, viewer, name: str):
        self.viewer, self.name = viewer, name
        self.layer = None
        self.err_layer = None
        self.stack: C.StageStack | None = None
        self.err: C.ErrorStack | None = None
        self.frames_shown = 0  # frames the layer held at the last refresh
        self.limits_key = None  # what the contrast limits were set for
        self.extras: dict[str, C.StageStack] = {}  # extra maps by name, frame i = main frame i
        self.extra_layers: dict = {}
        self.on_new_extra = None  # called after an extra map's layer is created (the dock re-lays out panels)
        self.on_error_shown = None  # called after the user shows the |error| layer (the dock lays it out)
        self.held = contextlib.nullcontext  # the running worker's pause (the dock sets Job.held)
        self._due: set[str] = set()  # layers scheduled to be built (extra-map keys, "|error|"): once each

    # ------------------------------------------------------------------ lifetime
    def usable_for(self, image_shape: tuple) -> bool:
        """Reusable for a run producing ``image_shape`` images (same number of dimensions)."""
        return _alive(self.viewer, self.layer) and self.layer.ndim == len(image_shape) + 1

    def begin(self, image_shape: tuple, reference, meta: dict, start: int = 0, hidden: bool = False) -> None:
        """Prepare for a run: a fresh stack (or, resuming at ``start``, the earlier stages kept).

        Creates the layer on the first run only (``hidden``: the dock shows it at the first
        stage); a reused layer keeps showing the previous result until the first new stage arrives.
        """
        image_shape = tuple(image_shape)
        self.fold()  # hidden maps of the previous run must not stretch the slider
        resume = start > 1 and self.stack is not None and self.stack.image_shape == image_shape
        if resume:
            self.stack.truncate_after(start - 1)
            for extra in self.extras.values():
                extra.truncate_after(start - 1)
        else:
            self.stack = C.StageStack(image_shape)
            self.extras = {}
        if reference is not None and tuple(reference.shape) == image_shape:
            if not resume or self.err is None:
                self.err = C.ErrorStack(reference)
            self.err.invalidate_after(len(self.stack))
        else:
            self.err = None
        self.frames_shown = len(self.stack)
        if not _alive(self.viewer, self.layer):
            with unselected_insert(self.viewer) if hidden else contextlib.nullcontext():
                self.layer = self.viewer.add_image(
                    # hidden, two blank frames: the stage axis and its slider exist from now on
                    np.zeros((2 if hidden else 1, *image_shape), np.float32), name=self.name, visible=not hidden,
                    axis_labels=spatial_labels(len(image_shape) + 1),
                    metadata={C.META_KEY: dict(meta, kind="reconstruction")},
                    contrast_limits=C.display_limits(np.ones(1), reference))
            self.layer.events.visible.connect(self._unfold)
            self.limits_key = None
        else:  # touch nothing on screen: a repaint now would delay the first stage by one repaint
            self.layer.metadata.setdefault(C.META_KEY, {}).update(meta, kind="reconstruction")
            if not self.layer.visible:
                self.layer.visible = True
        err = self.err_layer
        if _alive(self.viewer, err) and (self.err is None or not err.visible) and err.data.shape[0] > 1:
            err.data = np.zeros((1, *err.data.shape[1:]), np.float32)  # stale frames would stretch the slider

    def fold(self) -> None:
        """Hidden layers keep only their newest frame: a hidden layer's frames still count in
        napari's world extent, so an earlier 13-stage run would stretch the next run's stage
        slider. Showing a layer again restores its frames (the stacks stay in memory)."""
        for layer in self.layers():
            if not layer.visible and layer.data.shape[0] > 1:
                set_hidden_data(layer, layer.data[-1:])

    def _unfold(self, event=None) -> None:
        layer, stack = self.layer, self.stack
        if _alive(self.viewer, layer) and layer.visible and stack is not None and len(stack) \
                and layer.data.shape[0] != len(stack.display):
            layer.data = stack.display

    # ------------------------------------------------------------------ streaming
    def add(self, update) -> None:
        """Keep an update's image and extra maps; an extra's frames mirror the image's frames."""
        n_before = len(self.stack)
        self.stack.add(update.image, update.stage, update.label, update.metrics, update.total)
        added = len(self.stack) > n_before or self.stack.last_kept is not None
        if self.stack.last_kept is not None:  # the stack thinned its history: mirror it
            for extra in self.extras.values():
                extra.keep_only(self.stack.last_kept)
            if self.err is not None:
                self.err.invalidate_after(0)
        for key, image in (update.extras or {}).items():
            image = np.asarray(image, np.float32)
            extra = self.extras.get(key)
            if extra is None or extra.image_shape != image.shape:
                extra = self.extras[key] = C.StageStack(image.shape, keep_all=1 << 30, max_frames=1 << 30)
                # a map that starts later (DD-UGM's branches after its L+S warm start): blank
                # frames for the stages before it, so that its frame i stays the image's frame i
                for stage in self.stack.stages[:len(self.stack) - (1 if added else 0)]:
                    extra.add(np.zeros(image.shape, np.float32), stage, "")
            if added or not len(extra):
                extra.add(image, update.stage, update.label, total=update.total)
            else:
                extra.buf[len(extra) - 1] = image
                extra.stages[-1] = int(update.stage)

    def _refresh_extras(self) -> None:
        """Extra maps as hidden layers (tick the eye in the layer list to see one). Their contrast
        follows the newest frame (1st-99th percentile) until the user sets it."""
        for key, extra in self.extras.items():
            if not len(extra):
                continue
            layer = self.extra_layers.get(key)
            if not _alive(self.viewer, layer) or layer.ndim != extra.buf.ndim:
                self._build_later(key, lambda k=key: self._create_extra(k))  # not beside a stage's repaint
            elif layer.visible or layer.data.shape != extra.view.shape:
                self._sync_extra(key)

    def _create_extra(self, key: str) -> None:
        """The hidden layer of extra map ``key``; the running worker waits while napari builds it
        (a layer is ~0.05 s of Python that took 3-5x longer while the worker held the GIL)."""
        extra, layer = self.extras.get(key), self.extra_layers.get(key)
        if extra is None or not len(extra) or not _alive(self.viewer, self.layer) \
                or (_alive(self.viewer, layer) and layer.ndim == extra.buf.ndim):
            return
        with self.held(), unselected_insert(self.viewer):
            layer = self.extra_layers[key] = self.viewer.add_image(
                extra.view, name=f"{key} · {self.name}", colormap=EXTRA_COLORMAPS.get(key, "inferno"),
                visible=False,
                contrast_limits=_robust_limits(extra.view[-1]), axis_labels=self.layer.axis_labels,
                metadata={C.META_KEY: {"kind": "extra", "source": self.name, "extra": key}})
        layer.metadata["auto_limits"] = tuple(layer.contrast_limits)
        layer.events.visible.connect(lambda event, k=key: self._sync_extra(k))
        self._select_result(instead_of=layer)
        if self.on_new_extra is not None:
            QTimer.singleShot(0, self.on_new_extra)

    def _select_result(self, instead_of=None) -> None:
        """Give the layer controls to the result (not a helper; ``instead_of``: only if that
        layer is the active one, as napari makes a newly added layer)."""
        if not _alive(self.viewer, self.layer):
            return
        active = self.viewer.layers.selection.active
        if instead_of is None or (active is not None and unwrapped(active) is unwrapped(instead_of)):
            self.viewer.layers.selection.active = self.layer

    def select_later(self) -> None:
        """Select the result in a later event-loop turn (the layer controls' page switch is a Qt
        layout pass of its own)."""
        TURNS.add(self._select_result)

    def _sync_extra(self, key: str) -> None:
        layer, extra = self.extra_layers.get(key), self.extras.get(key)
        if not _alive(self.viewer, layer) or extra is None or not len(extra) or not layer.visible:
            return
        layer.data = extra.view
        self._extra_contrast(key)

    def _extra_contrast(self, key: str) -> None:
        """An extra map's contrast follows the frame the slider shows (1st-99th percentile of that
        stage: e_ℓ and early sampler stages differ by orders of magnitude between stages), until
        the user sets it."""
        layer, extra = self.extra_layers.get(key), self.extras.get(key)
        if not _alive(self.viewer, layer) or extra is None or not len(extra) or not layer.visible:
            return
        if np.allclose(layer.contrast_limits, layer.metadata.get("auto_limits", layer.contrast_limits)):
            limits = _robust_limits(extra.view[min(self.viewed_frame(), len(extra) - 1)])
            if not np.allclose(limits, layer.contrast_limits):
                layer.contrast_limits = limits
            layer.metadata["auto_limits"] = tuple(layer.contrast_limits)

    def follow_slider(self) -> None:
        """The slider moved: per-stage contrast of the visible extra maps."""
        for key in self.extra_layers:
            self._extra_contrast(key)

    def refresh(self, limits_key, reference) -> bool:
        """Show the stack's frames; the slider follows the newest frame unless the user scrubbed
        back. Contrast limits are set once per input (``limits_key``). Returns whether the slider
        is on the newest frame."""
        viewer, layer, n = self.viewer, self.layer, len(self.stack)
        if not _alive(viewer, layer) or n == 0:
            return True
        axis = stage_axis(viewer, layer)
        follow = self.frames_shown == 0 or viewer.dims.current_step[axis] >= self.frames_shown - 1
        shown = self.stack.display
        if n == self.frames_shown and layer.data.shape[0] == len(shown) and layer.data.base is self.stack.buf:
            layer.refresh()  # the newest frame was overwritten in place: re-slice this layer only
            self._refresh_extras()
            if _alive(viewer, self.err_layer) and self.err_layer.visible and self.err is not None:
                self.err.sync(self.stack)
                self.err_layer.refresh()
            return follow
        layer.data = shown
        self._refresh_extras()
        if self.limits_key != limits_key:
            layer.contrast_limits = C.display_limits(self.stack.buf[0], reference)
            self.limits_key = limits_key
        if _alive(viewer, self.err_layer) and self.err_layer.visible and self.err is not None:
            self.err_layer.data = self.err.sync(self.stack)
        if follow:  # in this turn: one repaint for the new data and the slider's move (measured:
            # a deferred move ran in the same event-loop pass anyway and cost a second repaint)
            viewer.dims.set_current_step(axis, n - 1)
        self.frames_shown = n
        return follow

    def viewed_frame(self) -> int:
        """Index of the frame the slider shows for this layer."""
        if not _alive(self.viewer, self.layer) or self.stack is None:
            return 0
        step = self.viewer.dims.current_step[stage_axis(self.viewer, self.layer)]
        return min(int(step), max(len(self.stack) - 1, 0))

    # ------------------------------------------------------------------ |error|
    def ensure_error_layer(self, visible: bool = False):
        """The |error| layer (created on demand; its frames are computed when it is shown)."""
        if self.err is None or self.stack is None or not _alive(self.viewer, self.layer):
            return None
        if not _alive(self.viewer, self.err_layer):
            ref = self.err.reference
            hi = ERROR_CONTRAST * float(ref.max() - ref.min() or 1.0)
            data = self.err.sync(self.stack) if visible else np.zeros((1, *self.stack.image_shape), np.float32)
            with unselected_insert(self.viewer):
                self.err_layer = self.viewer.add_image(
                    data, name=f"|error| {self.layer.name}", colormap="magma", contrast_limits=(0.0, hi),
                    axis_labels=self.layer.axis_labels, visible=visible,
                    metadata={C.META_KEY: {"kind": "error", "source": self.layer.name}})
            self.err_layer.events.visible.connect(self._error_shown)
            self._select_result(instead_of=self.err_layer)
        elif visible and not self.err_layer.visible:
            self.err_layer.visible = True  # _error_shown fills it
        return self.err_layer

    def ensure_error_layer_later(self) -> None:
        """The hidden |error| layer, built in a later event-loop turn (not beside a repaint)."""
        self._build_later("|error|", self.ensure_error_layer)

    def _build_later(self, key: str, build) -> None:
        """Run ``build`` in a later event-loop turn, once per ``key`` while it is due."""
        def run():
            self._due.discard(key)
            build()
        if key not in self._due:
            self._due.add(key)
            TURNS.add(run)

    def _error_shown(self, event=None) -> None:
        if self.err_layer is not None and self.err_layer.visible and self.err is not None and self.stack is not None:
            self.err_layer.data = self.err.sync(self.stack)
            if self.on_error_shown is not None:  # in its own turn: not inside the layer's event
                QTimer.singleShot(0, self.on_error_shown)

    def discard_if_empty(self) -> bool:
        """Remove the layers if they were made for a run that failed before its first stage."""
        if self.frames_shown or (self.stack is not None and len(self.stack)) or not _alive(self.viewer, self.layer) \
                or self.layer.metadata.get(C.META_KEY, {}).get("stages"):
            return False
        for layer in self.layers():
            self.viewer.layers.remove(layer)
        return True

    def layers(self) -> list:
        return [lay for lay in (self.layer, self.err_layer, *self.extra_layers.values()) if _alive(self.viewer, lay)]


class Panels:
    """Labelled side-by-side panels: layers translated into a grid, a text label above each."""

    def __init__(self, viewer):
        self.viewer = viewer
        self.points = None
        self.layers: list = []
        self.on_arranged = None  # called with the panel layers after each layout (the dock links their contrast)

    def arrange(self, entries: list[tuple[object, str]], panel_hw: tuple, fit: bool = True,
                reserve_px: float = 64.0) -> None:
        """Place ``entries`` = [(layer or None, caption), ...] in slots; None leaves the slot empty
        (e.g. a method still running). ``reserve_px`` keeps room under the panels for the canvas
        overlay."""
        viewer = self.viewer
        offsets, label_h, texts = self._layout([c for _, c in entries], panel_hw, reserve_px)
        self.layers = []
        for (layer, _), yx in zip(entries, offsets):
            if layer is not None and _alive(viewer, layer):
                set_translate(layer, yx)
                if not layer.visible:
                    layer.visible = True
                self.layers.append(layer)
        h, w = float(panel_hw[0]), float(panel_hw[1])
        pos = [(y - label_h, x + 0.02 * w) for y, x in offsets]
        bottom = max(y for y, _ in offsets) + h
        right = max(x for _, x in offsets) + w
        pos += [(bottom + reserve_px * label_h / LABEL_PX, 0.0), (bottom, right)]  # extent: overlay room, right edge
        self._labels(np.array(pos, float), texts + ["", ""])
        if fit:
            self.fit((-label_h, 0.0), (pos[-2][0], right))
        if self.on_arranged is not None:
            self.on_arranged(self.layers)

    def _layout(self, captions: list[str], panel_hw: tuple, reserve_px: float):
        """Panel offsets, the label strip's height (world units) and the captions fitted to a
        panel's width on screen; the strip grows by a line where a caption needs more than two."""
        canvas_hw = tuple(getattr(self.viewer.canvas, "size", (800, 800)))
        label_px = LABEL_PX
        for _ in range(3):
            offsets, label_h = C.panel_layout(len(captions), panel_hw, canvas_hw, label_px=label_px,
                                              reserve_px=reserve_px)
            texts = C.fit_labels(captions, float(panel_hw[1]) * label_px / label_h)
            need = LABEL_PX + LINE_PX * (max(t.count("\n") for t in texts) - 1)
            if need <= label_px:
                break
            label_px = need
        return offsets, label_h, texts

    def fit(self, top_left: tuple, bottom_right: tuple, margin: float = 0.02) -> None:
        """Centre the camera on a world rectangle and zoom to fit it (``reset_view(layers=...)``
        fails in napari 0.9 for a lower-dimensional subset of layers)."""
        (y0, x0), (y1, x1) = top_left, bottom_right
        ch, cw = (max(float(v), 1.0) for v in self.viewer.canvas.size)
        camera = self.viewer.camera
        center = list(camera.center)
        center[-2:] = [(y0 + y1) / 2, (x0 + x1) / 2]
        camera.center = tuple(center)
        camera.zoom = (1 - 2 * margin) * min(ch / max(y1 - y0, 1e-6), cw / max(x1 - x0, 1e-6))

    def _labels(self, pos: np.ndarray, texts: list[str]) -> None:
        if _alive(self.viewer, self.points) and len(self.points.data) != len(pos):
            # napari sets a Points layer's data and features in two steps, and its text encoding
            # indexes past the shorter one in between (IndexError): a new count gets a new layer
            self.viewer.layers.remove(self.points)
            self.points = None
        if not _alive(self.viewer, self.points):
            active = self.viewer.layers.selection.active
            self.points = self.viewer.add_points(
                pos, name=LABELS_NAME, size=0, face_color="transparent", border_color="transparent", border_width=0,
                features={"label": texts}, metadata={C.META_KEY: {"kind": "labels"}},
                text={"string": "{label}", "anchor": "lower_left", "size": 10, "color": "white"})
            if active is not None:  # keep the user's layer controls on the image, not the labels
                self.viewer.layers.selection.active = active
        else:
            self.points.data = pos
            self.points.features = {"label": texts}
            self.points.refresh_text()
            self.points.visible = True

    def caption(self, slot: int, text: str) -> None:
        """Change one panel's label (e.g. when its metrics arrive)."""
        if _alive(self.viewer, self.points):
            labels = list(self.points.features["label"])
            if slot < len(labels) and labels[slot] != text:
                labels[slot] = text
                self.points.features = {"label": labels}
                self.points.refresh_text()

    def captions(self) -> list[str]:
        if not _alive(self.viewer, self.points) or not self.points.visible:
            return []
        return [t for t in self.points.features["label"] if t]

    def clear(self) -> bool:
        """Back to one view: panels at the origin, the labels removed (hidden points would still
        count in the world extent, so Home would keep fitting the panels). Returns whether panels
        were laid out (the caller then resets the camera)."""
        laid_out = bool(self.layers) or _alive(self.viewer, self.points)
        for layer in self.layers:
            if _alive(self.viewer, layer):
                set_translate(layer, (0.0, 0.0))
        self.layers = []
        if self.on_arranged is not None:
            self.on_arranged([])
        if _alive(self.viewer, self.points):
            self.viewer.layers.remove(self.points)
        self.points = None
        return laid_out
