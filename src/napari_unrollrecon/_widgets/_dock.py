"""The reconstruction dock: input, sampling, method, Run/Stop, live plot, compare.

A thin Qt layer over :mod:`._controller` (Qt-free logic) and :mod:`._view` (napari layers),
composed of parts: the sections' widgets (:mod:`._sections`) and three behaviour mixins, each in
its own module — :mod:`._dock_inputs` (settings, parameter form, gathering the input),
:mod:`._dock_run` (worker, frames, captions, outcome) and :mod:`._dock_compare` (side by side,
tweak re-runs, Compare).
The method runs in a napari ``GeneratorWorker`` (:func:`._controller.drive`); layers are
touched only in the slots connected to the worker's signals, which run in the main thread.
Controls for a method are built from its ``Param`` declarations (:class:`._params.ParamForm`)
with the defaults of the current modality, so a newly registered method needs no widget code.
"""

from __future__ import annotations

from collections import deque

from qtpy.QtCore import QSize, Qt, QTimer
from superqt.utils import qdebounced
from qtpy.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets import _sections as S
from napari_unrollrecon._widgets import _view as V
from napari_unrollrecon._widgets._dock_common import (
    _NONE, _AUTO_REF, _GENERATED, _DOCK_WIDTH, _DOCK_MIN_WIDTH, _mask_kinds,
)
from napari_unrollrecon._widgets._dock_compare import CompareMixin
from napari_unrollrecon._widgets._dock_export import ExportMixin
from napari_unrollrecon._widgets._dock_inputs import InputsMixin
from napari_unrollrecon._widgets._dock_run import RunMixin
from napari_unrollrecon._widgets._pacer import DisplayPacer
from napari_unrollrecon._widgets._progress import RunProgress, StatusLine
from napari_unrollrecon._widgets._roi import RoiTool


class ReconWidget(ExportMixin, InputsMixin, RunMixin, CompareMixin, QWidget):
    """Dock widget: reconstruct the selected layer with any registered method, stage by stage."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self._gc_held = False  # this dock holds C.QUIET_GC (while its run streams)
        self.job: C.Job | None = None  # what the worker runs, released when it finishes
        self.active: C.RunState | C.CompareState | None = None  # the running (or just finished) run
        self.record: C.RunRecord | None = None  # last finished run, for tweak re-runs
        self.edits = C.ParamEdits()
        self.views: dict[str, V.ResultView] = {}  # per method, reused across runs
        self.shown: V.ResultView | None = None  # the run the canvas overlay describes
        self.panels = V.Panels(self.viewer)
        self.occluded = V.Occluded(self.viewer)  # inputs under a streaming result (hidden while it runs)
        self.slider_rows = V.SliderRows(self.viewer)  # the canvas keeps its size when a slider goes
        self.compare_layers: dict[str, object] = {}  # method (or "reference") -> layer, reused
        self.ref_panel = None  # our copy of the reference for side-by-side panels
        self.pending_rerun = False
        self.run_count = 0
        self._queue: deque = deque()
        self._busy = False
        self._flush_scheduled = False
        self._dirty = False
        self._caption_text = ""
        self.mask_preview_name = "sampling mask (preview)"

        # superqt debouncers: a burst of edits re-runs (or redraws the mask preview) once
        self._rerun_soon = qdebounced(self.rerun_after_tweak, timeout=300, parent=self)
        self._preview_soon = qdebounced(self.update_mask_preview, timeout=120, parent=self)
        self._pbar_timer = QTimer(self, interval=1000)
        self._pbar_timer.timeout.connect(lambda: self._progress_tick())  # looked up late: benchmarks wrap it
        self._refresh_timer = QTimer(self, singleShot=True)
        self._refresh_timer.timeout.connect(lambda: self._refresh_if_dirty())
        self._last_refresh = 0.0
        self.pacer = DisplayPacer(C.MAX_RATE)  # fewer refreshes while repaints are slow (_pacer)

        self._build_ui()
        self._build_export()  # Export trajectory… (_dock_export)
        self.roi = RoiTool(self)  # the ROI tab: metrics inside a drawn area, line profiles (_roi)
        self._warm_glyphs()
        for ev in ("inserted", "removed", "moved"):
            getattr(self.viewer.layers.events, ev).connect(self._refresh_layers)
        self.viewer.dims.events.current_step.connect(self._on_dims)
        self._refresh_layers()

    # ================================================================== UI
    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """A stable width, whatever the texts and layer names (they wrap or are cut)."""
        return QSize(_DOCK_WIDTH, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """Small: the sections scroll, so the dock never makes the window outgrow the screen."""
        return QSize(_DOCK_MIN_WIDTH, 200)

    def _build_ui(self) -> None:
        """Compose the parts (:mod:`._sections`) in a vertically scrolling area and expose their
        controls under short names."""
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        body = QWidget()
        self.body_scroll = S.scrolling(body)
        outer.addWidget(self.body_scroll)
        root = QVBoxLayout(body)
        root.setContentsMargins(4, 4, 4, 4)
        self.input_box = S.InputSection()
        self.sampling_box = S.SamplingSection(_mask_kinds())
        self.method_box = S.MethodSection()
        self.status = StatusLine("Pick a data layer (File > Open Sample > UnrollRecon), then press Run.")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tabs = S.ResultsTabs()
        self.run_progress = RunProgress()  # ours: napari's progress bar forces repaints (docs/gui.md)
        for part in (self.input_box, self.sampling_box, self.method_box, self.status, self.run_progress):
            root.addWidget(part)
        root.addWidget(self.tabs, 1)
        for part in (self.input_box, self.sampling_box, self.method_box, self.method_box.run_bar, self.tabs):
            for name, value in vars(part).items():
                if not name.startswith("_") and isinstance(value, QWidget):
                    setattr(self, name, value)
        self.sampling_form = self.sampling_box.form
        for part in (self.file_chooser, self.compare_at):  # parts acting on the viewer and the dock's runs
            part.attach(self)
        for combo in self.findChildren(QComboBox):  # a long layer name must not widen the dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(4 if combo is self.device_combo else 8)

        self.input_combo.currentIndexChanged.connect(self._input_changed)
        self.kind_combo.currentIndexChanged.connect(self._input_changed)
        self.frames_combo.currentIndexChanged.connect(self._input_changed)
        self.modality_combo.currentIndexChanged.connect(self._modality_changed)
        for signal in self.sampling_box.changed_signals():
            signal.connect(self._sampling_changed)
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.param_form.changed.connect(self._param_changed)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.compare_button.clicked.connect(self.compare)
        self.side_check.toggled.connect(self._side_by_side_changed)
        self.defaults_button.clicked.connect(self.reset_params)
        self._modality = None
        self._method_names = ()
        self._modality_changed()

    # ================================================================== layer lists
    def _image_layers(self):
        """The user's image layers (our outputs are never offered as input or reference)."""
        from napari.layers import Image

        return [layer for layer in self.viewer.layers if isinstance(layer, Image) and not V.ours(layer)]

    def _our_layers(self, *kinds):
        return [layer for layer in self.viewer.layers if V.ours(layer, *kinds)]

    def _layer(self, name: str):
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _fill(self, combo: QComboBox, names: list[str], keep: str | None) -> None:
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        if keep in names:
            combo.setCurrentText(keep)
        combo.blockSignals(False)

    def _refresh_layers(self, event=None) -> None:
        value = getattr(event, "value", None)
        if value is not None and V.ours(value):
            return  # our own outputs never change the input choices
        layers = self._image_layers()
        names = [layer.name for layer in layers]
        current = self.input_combo.currentText()
        new = value if getattr(event, "type", "") == "inserted" else None
        if new is not None and new.name in names and C.reconstructable(new.data, new.metadata, new.rgb):
            current = new.name  # a file or sample just opened: reconstruct that (masks are not data)
        if current not in names:  # prefer measured data (k-space / sinogram) from our samples
            measured = [layer.name for layer in layers if C.guess_kind(None, layer.metadata) != "image"]
            current = (measured or names or [None])[0]
        self._fill(self.input_combo, names, current)
        self._fill(self.ref_combo, [_NONE, _AUTO_REF, *names], self.ref_combo.currentText() or _AUTO_REF)
        self._fill(self.mask_layer_combo, [_GENERATED, *names], self.mask_layer_combo.currentText() or _GENERATED)
        self._input_changed()

    # ================================================================== teardown
    def closeEvent(self, event):  # noqa: N802 - Qt API
        if self.worker is not None:
            self.worker.quit()
        if self._gc_held:
            self._gc_held = False
            C.QUIET_GC.release()
        self.occluded.restore()
        self.slider_rows.release()
        self.viewer.dims.events.current_step.disconnect(self._on_dims)
        self.roi.disconnect_viewer()
        for ev in ("inserted", "removed", "moved"):
            getattr(self.viewer.layers.events, ev).disconnect(self._refresh_layers)
        super().closeEvent(event)


