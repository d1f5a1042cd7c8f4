"""The reconstruction dock: input, sampling, method, Run/Stop, live plot, compare.

A thin Qt layer over :mod:`._controller` (Qt-free logic) and :mod:`._view` (napari layers).
The method runs in a napari ``GeneratorWorker`` (:func:`._controller.drive`); layers are
touched only in the slots connected to the worker's signals, which run in the main thread.
Controls for a method are built from its ``Param`` declarations (:class:`._params.ParamForm`)
with the defaults of the current modality, so a newly registered method needs no widget code.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QLabel,
    QListWidgetItem,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets import _sections as S
from napari_unrollrecon._widgets import _view as V

_NONE = "(none)"
_AUTO_REF = "(input image = ground truth)"
_GENERATED = "(generated)"
_KIND_CHOICES = ("auto", "image", "kspace", "sinogram")
_MASK_KINDS_FALLBACK = ("cartesian", "equispaced", "radial", "random", "gaussian", "poisson")
_PBAR_DELAY_MS = 700  # runs shorter than this get no progress bar (creating one stalls ~0.1 s)
_FORM_MIN_HEIGHT = 56  # px: about two rows
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


def _short(name: str, n: int = 34) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


class ReconWidget(QWidget):
    """Dock widget: reconstruct the selected layer with any registered method, stage by stage."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.active: C.RunState | C.CompareState | None = None  # the running (or just finished) run
        self.record: C.RunRecord | None = None  # last finished run, for tweak re-runs
        self.edits = C.ParamEdits()
        self.views: dict[str, V.ResultView] = {}  # per method, reused across runs
        self.shown: V.ResultView | None = None  # the run the canvas overlay describes
        self.panels = V.Panels(self.viewer)
        self.compare_layers: dict[str, object] = {}  # method (or "reference") -> layer, reused
        self.ref_panel = None  # our copy of the reference for side-by-side panels
        self.pending_rerun = False
        self.run_count = 0
        self.pbar = None
        self._queue: deque = deque()
        self._busy = False
        self._flush_scheduled = False
        self._dirty = False
        self._caption_text = ""
        self.mask_preview_name = "sampling mask (preview)"

        self._tweak_timer = QTimer(self, singleShot=True, interval=300)
        self._tweak_timer.timeout.connect(self.rerun_after_tweak)
        self._mask_timer = QTimer(self, singleShot=True, interval=120)
        self._mask_timer.timeout.connect(self.update_mask_preview)
        self._pbar_timer = QTimer(self, interval=1000)
        self._pbar_timer.timeout.connect(lambda: self._progress_tick())  # looked up late: benchmarks wrap it
        self._refresh_timer = QTimer(self, singleShot=True)
        self._refresh_timer.timeout.connect(lambda: self._refresh_if_dirty())
        self._last_refresh = 0.0

        self._build_ui()
        self._warm_glyphs()
        for ev in ("inserted", "removed", "moved"):
            getattr(self.viewer.layers.events, ev).connect(self._refresh_layers)
        self.viewer.dims.events.current_step.connect(self._on_dims)
        self._refresh_layers()

    # ================================================================== UI
    def _build_ui(self) -> None:
        """Compose the parts (:mod:`._sections`) and expose their controls under short names."""
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        self.input_box = S.InputSection()
        self.sampling_box = S.SamplingSection(_mask_kinds())
        self.method_box = S.MethodSection()
        self.status = QLabel("Pick a data layer (File > Open Sample > UnrollRecon), then press Run.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tabs = S.ResultsTabs()
        for part in (self.input_box, self.sampling_box, self.method_box, self.status):
            root.addWidget(part)
        root.addWidget(self.tabs, 1)
        for part in (self.input_box, self.sampling_box, self.method_box, self.method_box.run_bar, self.tabs):
            for name, value in vars(part).items():
                if not name.startswith("_") and isinstance(value, QWidget):
                    setattr(self, name, value)
        self.sampling_form = self.sampling_box.form

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
        if new is not None and new.name in names and C.guess_kind(None, new.metadata) != "image":
            current = new.name  # measured data just opened (sample/reader): reconstruct that
        if current not in names:  # prefer measured data (k-space / sinogram) from our samples
            measured = [layer.name for layer in layers if C.guess_kind(None, layer.metadata) != "image"]
            current = (measured or names or [None])[0]
        self._fill(self.input_combo, names, current)
        self._fill(self.ref_combo, [_NONE, _AUTO_REF, *names], self.ref_combo.currentText() or _AUTO_REF)
        self._fill(self.mask_layer_combo, [_GENERATED, *names], self.mask_layer_combo.currentText() or _GENERATED)
        self._input_changed()

    # ================================================================== reacting to settings
    def _input_changed(self, *_) -> None:
        layer = self._layer(self.input_combo.currentText())
        if layer is not None:
            kind = self._kind(layer)
            modality = C.guess_modality(kind, np.ndim(layer.data) - (1 if layer.rgb else 0))
            self.modality_combo.blockSignals(True)
            self.modality_combo.setCurrentIndex(list(C.MODALITIES).index(modality))
            self.modality_combo.blockSignals(False)
            ref = layer.metadata.get(C.META_KEY, {}).get("reference")
            if ref in self.viewer.layers:
                self.ref_combo.setCurrentText(ref)
            elif kind == "image":
                self.ref_combo.setCurrentText(_AUTO_REF)
        if self._current_modality() != self._modality or self._method_names != self._registered():
            self._modality_changed()
        else:
            self._sampling_changed()

    def _kind(self, layer) -> str:
        choice = _KIND_CHOICES[self.kind_combo.currentIndex()]
        return C.guess_kind(layer.data, layer.metadata) if choice == "auto" else choice

    def _current_modality(self) -> str:
        return self.modality_combo.currentData()

    def _modality_changed(self, *_) -> None:
        """Offer the modality's methods and rebuild the form with that modality's defaults."""
        from napari_unrollrecon.engine import registry

        modality = self._modality = self._current_modality()
        self._method_names = self._registered()
        ct = modality == "ct"
        for w in (self.mask_combo, self.mask_layer_combo, self.ratio_spin, self.seed_spin):
            self.sampling_form.setRowVisible(w, not ct)
        self.sampling_form.setRowVisible(self.views_spin, ct)
        specs = []
        for name in registry.names():
            try:
                spec = registry.get(name)
            except Exception:  # noqa: BLE001 - a broken method module must not break the dock
                continue
            if modality in spec.modalities:
                specs.append(spec)
        current = self.method_combo.currentData()
        self.method_combo.blockSignals(True)
        self.method_combo.clear()
        for spec in specs:
            self.method_combo.addItem(spec.title + ("  [learned]" if spec.learned else ""), spec.name)
        names = [s.name for s in specs]
        fallback = next((n for n in ("tv", "fbp") if n in names), names[0] if names else None)
        default = current if current in names else fallback
        if default:
            self.method_combo.setCurrentIndex(names.index(default))
        self.method_combo.blockSignals(False)
        self.compare_list.clear()
        for i, spec in enumerate(specs):
            item = QListWidgetItem(spec.title)
            item.setData(Qt.ItemDataRole.UserRole, spec.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if i < 3 and not spec.learned else Qt.CheckState.Unchecked)
            self.compare_list.addItem(item)
        self._method_changed()
        self._sampling_changed()

    @staticmethod
    def _registered() -> tuple:
        from napari_unrollrecon.engine import registry

        return tuple(registry.names())

    def _sampling_changed(self, *_) -> None:
        self._mask_timer.start()

    def _input_key(self) -> tuple:
        """What a tweak re-run depends on besides the method's parameters."""
        layer = self._layer(self.input_combo.currentText())
        s = self.settings()
        return (self.input_combo.currentText(), id(layer.data) if layer is not None else None,
                self.ref_combo.currentText(), self.mask_layer_combo.currentText(), s.modality, s.kind,
                s.mask_kind, s.ratio, s.seed, s.n_views, s.noise, s.device)

    def _method_changed(self, *_) -> None:
        from napari_unrollrecon.engine import registry

        name = self.method_combo.currentData()
        if not name:
            self.param_form.build(_EmptySpec())
            self._fit_form()
            self.method_info.setText("no method handles this modality yet")
            return
        spec = registry.get(name)
        hints = {p.name: C.path_hint(spec, p) for p in spec.params if p.kind == "path"}
        self.param_form.build(spec, self.edits.values(spec, self._modality), hints)
        self._fit_form()
        self._describe_method(spec)

    def reset_params(self) -> None:
        """Show the current modality's defaults again (the user's edits for it are dropped)."""
        name = self.method_combo.currentData()
        if name:
            from napari_unrollrecon.engine import registry

            self.edits.forget(registry.get(name), self._modality)
            self._method_changed()

    def _describe_method(self, spec) -> None:
        info = spec.description
        if spec.learned:
            values = self.param_form.values()
            missing = C.missing_weights(spec, values)
            paths = [values.get(p.name) for p in spec.params if p.kind == "path"]
            bundled = C.bundled_weights(spec)
            info += "\n" + (missing or (f"weights: {paths[0]}" if paths and paths[0]
                                        else f"weights: bundled {bundled[0].name}" if bundled else ""))
        notes = []
        if any(p.live for p in spec.params):
            notes.append("● = can change while it runs")
        if any(p.by_modality for p in spec.params):
            notes.append(f"defaults for {C.MODALITIES.get(self._modality, self._modality)}")
        if notes:
            info += "\n" + " · ".join(notes)
        self.method_info.setText(info.strip())

    def _fit_form(self) -> None:
        """Size the scroll area to the form, up to a cap (long forms scroll). Also once more after
        the event loop has laid the new rows out (a form rebuilt inside a signal reports 0)."""
        layout = self.param_form.layout_
        layout.invalidate()
        layout.activate()
        height = max(layout.sizeHint().height(), self.param_form.sizeHint().height())
        # a maximum (not a fixed height) lets a short dock shrink the form rather than squeeze
        # the Run row onto it; the minimum keeps about three rows visible
        self.param_scroll.setMaximumHeight(min(height + 4, _FORM_MAX_HEIGHT))
        self.param_scroll.setMinimumHeight(min(height + 4, _FORM_MIN_HEIGHT))
        if height == 0 and self.param_form.controls:
            QTimer.singleShot(0, self._fit_form)

    def _spec(self):
        from napari_unrollrecon.engine import registry

        name = self.method_combo.currentData()
        if not name:
            raise C.InputError("no method is available for this modality")
        return registry.get(name)

    # ================================================================== gathering inputs
    def settings(self) -> C.RunSettings:
        layer = self._layer(self.input_combo.currentText())
        return C.RunSettings(
            modality=self._current_modality(),
            kind=self._kind(layer) if layer is not None else "image",
            mask_kind=self.mask_combo.currentText(),
            ratio=self.ratio_spin.value(),
            seed=self.seed_spin.value(),
            n_views=self.views_spin.value(),
            noise=self.noise_spin.value(),
            device=self.device_combo.currentText(),
        )

    def _gather(self):
        """Checked input array, settings, mask, reference and the reconstruction's shape;
        raises InputError with the fix."""
        layer = self._layer(self.input_combo.currentText())
        if layer is None:
            raise C.InputError("no data layer selected: open a file or a sample (File > Open Sample > UnrollRecon)")
        settings = self.settings()
        raw = C.frames_first(C.layer_array(layer.data, layer.metadata), layer.metadata,
                             self.frames_combo.currentData())
        data = C.check_input(raw, settings.kind, settings.modality, rgb=layer.rgb)
        mask = None
        if settings.modality != "ct":
            mask_layer = self._layer(self.mask_layer_combo.currentText())
            if mask_layer is not None:  # checked and centred like a mask file (layout detected)
                mask = C.make_mask(settings, data.shape, np.asarray(mask_layer.data),
                                   f"mask layer '{mask_layer.name}'")[0]
            else:
                mask = C.make_mask(settings, data.shape)[0]
        shape = C.image_shape_for(data, settings)
        reference = self._reference(data, settings, shape)
        return layer, data, settings, mask, reference, shape

    def _reference(self, data, settings, shape):
        choice = self.ref_combo.currentText()
        if choice == _NONE:
            return None
        if choice == _AUTO_REF or choice not in self.viewer.layers:
            return C.auto_reference(data, settings.kind)
        ref_layer = self.viewer.layers[choice]
        return C.check_reference(C.layer_array(ref_layer.data, ref_layer.metadata), shape)

    def _reference_name(self) -> str:
        choice = self.ref_combo.currentText()
        return self.input_combo.currentText() if choice == _AUTO_REF else choice

    def _prepare_fn(self, data, settings, mask):
        generated = self.mask_layer_combo.currentText() == _GENERATED

        def prepare():  # a generated mask is made again by the engine, exactly as the CLI makes it
            return C.build_problem(data, settings, None if generated else mask)

        return prepare

    def _values(self, spec) -> dict:
        values = C.coerce_params(spec, self.param_form.values())
        missing = C.missing_weights(spec, values)
        if missing:
            raise C.InputError(missing)
        return values

    # ================================================================== messages
    def report(self, message: str, error: bool = True) -> None:
        colour = "#ff8a80" if error else "#c5e1a5"
        self.status.setStyleSheet(f"color: {colour};")
        self.status.setText(message)
        if error:
            _notify(message)

    def _say(self, message: str) -> None:
        if self.status.styleSheet():
            self.status.setStyleSheet("")
        self.status.setText(message)

    def _warm_glyphs(self) -> None:
        """Draw every glyph our texts use once, transparent, while the dock opens: a glyph drawn
        for the first time costs ~10 ms (Qt raster + signed-distance field + texture upload), which
        would otherwise land in the first run's first frames (~0.4 s for a caption)."""
        ov = self.viewer.canvas.overlays.text
        if ov.visible:  # the user's own overlay: leave it alone
            return
        ov.text, ov.color, ov.visible = _GLYPHS, (0.0, 0.0, 0.0, 0.0), True
        self._warming = True
        QTimer.singleShot(1500, self._end_warm)

    def _end_warm(self) -> None:
        ov = self.viewer.canvas.overlays.text
        if getattr(self, "_warming", False):
            self._warming = False
            if ov.text == _GLYPHS:
                ov.visible, ov.text = False, ""

    def _overlay(self, text: str, where: str = "top_left") -> None:
        """What is reconstructed, with what and how well, written on the canvas itself."""
        ov = self.viewer.canvas.overlays.text
        text = C.wrap(text, max(40, int(self.viewer.canvas.size[1] / 10)))  # ~10 px per character
        if getattr(self, "_warming", False):
            self._warming = False
            ov.visible = False  # restyle below
        if not ov.visible or ov.position != where:  # the user may restyle it after
            ov.position, ov.font_size, ov.color = where, 10, "white"
        if ov.text != text:
            ov.text = text
        ov.visible = True

    # ================================================================== mask preview
    def update_mask_preview(self) -> None:
        if self._current_modality() == "ct":
            self.realised_label.setText(f"{self.views_spin.value()} views over 180°")
            return
        layer = self._layer(self.input_combo.currentText())
        if layer is None:
            self.realised_label.setText("")
            return
        try:
            settings = self.settings()
            shape = C.layer_array(layer.data, layer.metadata).shape
            mask_layer = self._layer(self.mask_layer_combo.currentText())
            mask, desc = C.make_mask(settings, shape, None if mask_layer is None else np.asarray(mask_layer.data),
                                     f"mask layer '{mask_layer.name}'" if mask_layer else "mask layer")
        except (ValueError, ImportError) as exc:
            self.realised_label.setText(f"mask: {exc}")
            return
        ratio = float(np.mean(mask != 0))
        self.realised_label.setText(f"realised ratio {ratio:.3f} (acceleration ×{1 / max(ratio, 1e-9):.1f})")
        preview = self._layer(self.mask_preview_name)
        if not self.preview_check.isChecked():
            if preview is not None:
                preview.visible = False
            return
        if preview is None:
            self.viewer.add_image(mask, name=self.mask_preview_name, colormap="cyan", blending="additive",
                                  opacity=0.5, contrast_limits=(0, 1), metadata={C.META_KEY: {"kind": "mask-preview"}})
        else:
            if preview.data.shape != mask.shape or not np.array_equal(preview.data, mask):
                preview.data = mask
            preview.visible = True

    # ================================================================== run / stop
    def run(self) -> None:
        """Start a reconstruction of the selected layer with the selected method."""
        if self.worker is not None:
            self.report("a run is in progress; press Stop first")
            return
        try:
            spec = self._spec()
            values = self._values(spec)
            layer, data, settings, mask, reference, shape = self._gather()
        except (ValueError, ImportError, KeyError) as exc:
            self.report(str(exc).strip("'\""))
            return
        self.record = None
        self._start(spec, self._prepare_fn(data, settings, mask), values, reference, source=layer.name,
                    settings=settings, mask=mask, shape=shape, ref_name=self._reference_name())

    def _start(self, spec, prepare, values, reference, source, settings, shape, ref_name="", mask=None,
               cache=None, start=0) -> None:
        """Start the worker first (it builds the problem and computes stage 1 meanwhile), then
        prepare the layers (created on a method's first run only, reused after)."""
        from napari.qt.threading import create_worker

        self.worker = create_worker(C.drive, spec, prepare, values, reference, cache, start, _start_thread=False)
        self._connect(self.worker, spec.title)
        t0 = time.perf_counter()
        self.active = C.RunState(spec=spec, values=dict(values), key=self._input_key(), reference=reference,
                                 source=source, settings=settings, mask=mask, start=start, t0=t0, prepare=prepare,
                                 shape=tuple(shape), ref_name=ref_name,
                                 limits_key=(source, ref_name, tuple(shape), settings.kind))
        self.worker.start()
        self._running_ui(True)
        self.plot.clear()
        meta = {"method": spec.name, "title": spec.title, "params": dict(values), "source": source,
                "mask": mask, "settings": vars(settings).copy()}
        view = self.views.get(spec.name)
        if view is None or not (view.usable_for(shape) or view.layer is None):
            view = self.views[spec.name] = V.ResultView(self.viewer, spec.name)
        keep = {id(layer) for layer in view.layers()}
        for layer in self._our_layers():  # our earlier outputs would cover (and slow down) this run
            if id(layer) not in keep and layer.visible:
                layer.visible = False
        self.panels.clear()
        view.begin(shape, reference, meta, start=start)
        view.on_new_extra = self._arrange_run
        self.active.view = self.shown = view
        self._arrange_run()
        if view.layer is not None and self.viewer.layers.selection.active is not view.layer:
            self.viewer.layers.selection.active = view.layer  # its controls, not a helper layer's
        self._say(f"{spec.title}: starting on '{source}' ({settings.describe()})…")

    def _running_ui(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.compare_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        if running:
            self._pbar_timer.start(_PBAR_DELAY_MS)
        else:
            self._pbar_timer.stop()

    def _connect(self, worker, what: str) -> None:
        """Worker signals go through one ordered queue: napari's progress bar and layer updates
        may process events, which would otherwise re-enter a slot and reorder the stages."""
        worker.yielded.connect(lambda f: self._dispatch(self._on_frame, f))
        worker.returned.connect(lambda o: self._dispatch(self._on_returned, o))
        worker.aborted.connect(lambda: self._dispatch(self._on_aborted))
        worker.errored.connect(lambda exc: self._dispatch(self.report, C.friendly(exc, what)))
        worker.finished.connect(lambda: self._dispatch(self._on_finished))

    def _dispatch(self, slot, *args) -> None:
        """Queue a worker signal; a zero-delay timer handles the queue in order.

        napari's progress bar calls ``processEvents`` on every update, so handling signals
        directly would nest them (stages out of order) and never hand control back to the event
        loop's caller while a fast method keeps yielding.
        """
        self._queue.append((slot, args))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            QTimer.singleShot(0, self._flush)

    def _flush(self) -> None:
        """Handle what is queued now; frames only fill the stack, and the display is refreshed
        once at the end (one layer update and one repaint however many stages arrived)."""
        self._flush_scheduled = False
        if self._busy:  # fired inside a nested processEvents: the outer flush reschedules
            return
        self._busy = True
        try:
            for _ in range(len(self._queue)):
                fn, a = self._queue.popleft()
                fn(*a)
            if self._dirty:
                self._refresh_soon()
        finally:
            self._busy = False
        if self._queue and not self._flush_scheduled:
            self._flush_scheduled = True
            QTimer.singleShot(0, self._flush)

    def _refresh_soon(self) -> None:
        """Refresh the display now, or - within 1/MAX_RATE s of the last refresh - once that
        interval has passed (stages keep filling the stack meanwhile)."""
        wait = self._last_refresh + 1.0 / C.MAX_RATE - time.perf_counter()
        if wait <= 0:
            self._refresh_display()
        elif not self._refresh_timer.isActive():
            self._refresh_timer.start(int(1000 * wait) + 1)

    def _refresh_if_dirty(self) -> None:
        if self._dirty and not self._busy:
            self._refresh_display()

    def stop(self) -> None:
        """Ask the running method to stop; it does so at its next stage."""
        if self.worker is not None:
            self.worker.quit()
            self._say("stopping at the next stage…")

    # ------------------------------------------------------------------ worker slots (main thread)
    def _on_frame(self, frame) -> None:
        if isinstance(frame, C.Outcome):
            self._on_compare_outcome(frame)
            return
        a = self.active
        if a is None:
            return
        u = frame.update
        a.last = u
        if not frame.show:
            return
        if a.compare:
            self._say(f"comparing: {a.titles[frame.method]} stage {u.stage}/{u.total}")
            return
        view = a.view
        if u.image.shape != view.stack.image_shape:  # e.g. an operator that crops: start afresh
            view.begin(u.image.shape, a.reference if a.reference is not None
                       and a.reference.shape == u.image.shape else None, {})
        view.add(u)
        if a.first_frame is None:
            a.first_frame = time.perf_counter() - a.t0
        self.plot.set_total(u.total)
        for key in ("psnr", "ssim"):
            self.plot.add(key, u.stage, u.metrics.get(key))
        self.plot.add("residual", u.stage, u.residual)
        a.shown = u
        self._dirty = True

    def _refresh_display(self) -> None:
        """Put the newest stages on screen: layer data, slider, caption, status line."""
        self._dirty = False
        self._refresh_timer.stop()
        self._last_refresh = time.perf_counter()
        a = self.active
        if a is None or a.compare or a.shown is None:
            return
        a.view.refresh(a.limits_key, a.reference)
        self._caption()
        self._say(self._progress_text(a.spec, a.shown))

    def _caption(self) -> None:
        """Overlay for the run on screen: the stage of the frame being viewed (not the slider
        index: display is throttled, so frame i holds stage ``stack.stages[i]``)."""
        a, view = self.active, self.shown
        if a is None or a.compare or view is None or view is not a.view:
            return
        stack = view.stack
        if stack is None or len(stack) == 0:
            text = f"{a.spec.title} · starting…"
        else:
            i = view.viewed_frame()
            text = f"{a.spec.title} · {stack.stage_text(i)} (slider {i}"
            text += ")" if i == len(stack) - 1 else f"; newest: stage {stack.stages[-1]})"
            if stack.score_text(i):
                text += f"\n{stack.score_text(i)} vs '{_short(a.ref_name, 30)}'"
        text += f"\ndata: '{_short(a.source)}' · {a.settings.describe()}"
        self._overlay(text, "bottom_left" if self.panels.captions() else "top_left")

    def _on_dims(self, event=None) -> None:
        """The user scrubbed the stage slider: say which stage that frame is."""
        if not self._busy and self.shown is not None:
            self._caption()

    def _progress_text(self, spec, u) -> str:
        text = f"{spec.title}: {u.label or f'stage {u.stage}/{u.total}'}"
        if u.metrics:
            text += f" · PSNR {u.metrics['psnr']:.2f} dB"
            if "ssim" in u.metrics:
                text += f" · SSIM {u.metrics['ssim']:.3f}"
        if u.residual is not None:
            text += f" · residual {u.residual:.2e}"
        learned = [f"{k} {v:.3g}" for k, v in (u.info or {}).items() if k in _INFO_SHOWN]
        if learned:
            text += " · " + ", ".join(learned)
        return text + f" · {u.elapsed:.1f} s"

    def _progress_tick(self) -> None:
        """napari progress bar, created only for runs still going after a moment and updated once
        a second from its own timer tick (it calls processEvents, so never from a frame slot)."""
        from napari.utils import progress

        a = self.active
        if self.worker is None or a is None:
            self._pbar_timer.stop()
            return
        if self._pbar_timer.interval() != 1000:
            self._pbar_timer.setInterval(1000)
        u = a.last
        if self.pbar is None:
            desc = "compare" if a.compare else a.spec.title
            self.pbar = progress(total=u.total if u is not None and not a.compare else 0, desc=desc)
        elif u is not None and not a.compare and u.stage > self.pbar.n:
            if self.pbar.total != u.total:
                self.pbar.total = u.total
            self.pbar.update(u.stage - self.pbar.n)

    def _on_returned(self, outcome) -> None:
        if self._dirty:
            self._refresh_display()
        a = self.active
        if a is None or outcome is None:
            return
        if outcome.error:
            self.report(outcome.error + "  (your layers were not changed)")
            return
        result, view = outcome.result, a.view
        if view.layer is not None and view.layer in self.viewer.layers:
            info = view.layer.metadata.setdefault(C.META_KEY, {})
            info.update(params=dict(result.params), metrics=dict(result.metrics), seconds=result.seconds,
                        stages=list(view.stack.stages))
            info.update({k: v for k, v in outcome.prepared.meta.items() if k not in info.get("settings", {})})
            info["problem"] = dict(outcome.prepared.meta)
            view.ensure_error_layer(visible=self.side_check.isChecked())
        text = f"✓ {a.spec.title} on '{a.source}': {result.stages} stages in {result.seconds:.2f} s"
        if result.metrics:
            text += f" · PSNR {result.metrics['psnr']:.2f} dB · SSIM {result.metrics.get('ssim', float('nan')):.3f}"
        if a.first_frame is not None:
            text += f" · first stage after {a.first_frame:.2f} s"
        note = outcome.prepared.meta.get("mask_note") if outcome.prepared.meta.get("mask_kind") == "custom" else None
        if note:  # say which layout a user's mask was taken to have, as the CLI does
            text += f"\n{note}"
        source = self._layer(a.source)
        if source is not None and a.spec.modalities and self._current_modality() == "dmri":
            text += "\n" + C.frame_note(np.asarray(source.data), source.metadata, self.frames_combo.currentData())
        if result.meta.get("note"):  # what the method assumed (e.g. a real-valued network dropping the phase)
            text += f"\n⚠ {result.meta['note']}"
        if any(p.live or p.stage is not None for p in a.spec.params):
            text += "\nChange a parameter to re-run" + (" from the affected stage." if a.spec.resumable else ".")
        self.report(text, error=False)
        last = a.last
        self.record = C.RunRecord(method=a.spec.name, params=dict(result.params), prepared=outcome.prepared,
                                  reference=a.reference, cache=outcome.cache,
                                  stages_done=last.stage if last else result.stages, layer_name=view.name,
                                  settings_key=a.key, run=a)

    def _on_aborted(self) -> None:
        if self._dirty:
            self._refresh_display()
        a = self.active or {}
        last = a.last
        where = f" after stage {last.stage}/{last.total}" if last else ""
        self.report(f"stopped{where}; the layer keeps the stages computed so far", error=False)

    def _on_finished(self) -> None:
        if self._dirty:
            self._refresh_display()
        if self.pbar is not None:
            self.pbar.close()
            self.pbar = None
        self.worker = None
        self._running_ui(False)
        a = self.active or {}
        view = a.view
        if view is not None and not a.compare and view.discard_if_empty():
            self.views.pop(a.spec.name, None)  # its layer was made for a run that produced nothing
            self.shown = None
        if self.pending_rerun:
            self.pending_rerun = False
            self.rerun_after_tweak()

    # ================================================================== side by side
    def _side_by_side_changed(self, on: bool) -> None:
        if on:
            self._arrange_run()
        else:
            self.panels.clear()
            if self.ref_panel is not None and self.ref_panel in self.viewer.layers:
                self.ref_panel.visible = False
            if self.shown is not None and self.shown.err_layer in self.viewer.layers:
                self.shown.err_layer.visible = False
            self.viewer.reset_view()
        self._caption()

    def _arrange_run(self) -> None:
        """Side by side for the run: reference | stages | |error|, each labelled; otherwise a
        single view (panels back at the origin)."""
        a, view = self.active, self.shown
        if not self.side_check.isChecked() or a is None or a.compare or view is None:
            self.panels.clear()
            return
        entries = []
        ref = a.reference
        if ref is not None:
            entries.append((self._reference_panel(ref, a), f"reference\n{_short(a.ref_name, 30)}"))
        entries.append((view.layer, f"{a.spec.title}\nstages on the 'stage' slider"))
        if view.err is not None:
            entries.append((view.ensure_error_layer(visible=True),
                            f"|error| = |result − reference|\n0 – {int(100 * V.ERROR_CONTRAST)}% of range"))
        for key, layer in view.extra_layers.items():  # the method's extra maps (ε, e_ℓ) per stage
            if V._alive(self.viewer, layer):
                entries.append((layer, V.EXTRA_TITLES.get(key, f"{key}\nper stage (same slider)")))
        self.panels.arrange(entries, a.shape[-2:])

    def _reference_panel(self, ref: np.ndarray, a: dict):
        """Our copy of the reference, so panels never move the user's own layer."""
        meta = {C.META_KEY: {"kind": "reference", "source": a.ref_name}}
        lim = C.display_limits(ref, ref)
        if self.ref_panel is None or self.ref_panel not in self.viewer.layers or self.ref_panel.ndim != ref.ndim:
            self.ref_panel = self.viewer.add_image(ref, name="reference", contrast_limits=lim, metadata=meta)
        else:
            old = self.ref_panel.data
            if old.shape != ref.shape or not np.array_equal(old, ref):
                self.ref_panel.data = ref
                self.ref_panel.contrast_limits = lim
            self.ref_panel.metadata.update(meta)
        return self.ref_panel

    # ================================================================== live tweaks
    def _param_changed(self, name: str, value) -> None:
        spec = self.param_form.spec
        if spec is None or not getattr(spec, "name", None):
            return
        self.edits.record(spec, self._modality, name, value)
        try:
            values = C.coerce_params(spec, self.param_form.values())
        except ValueError as exc:
            self.report(str(exc))
            return
        a = self.active
        if self.worker is not None and a is not None and a.spec.name == spec.name and not a.compare:
            now, later = C.live_changes(spec, a.values, values)
            if now:
                a.sent.update(now)
                a.values.update(now)
                self.worker.send(dict(a.sent))  # the worker keeps only the latest send: send all
                sent = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in now.items())
                self._say(f"sent {sent} to the running method")
            if later:
                self._say(f"{', '.join(sorted(later))} will apply when the run is repeated")
                self.pending_rerun = True
            return
        if spec.learned:
            self._describe_method(spec)
        rec = self.record
        if rec is not None and rec.method == spec.name and rec.settings_key == self._input_key():
            self._tweak_timer.start()  # debounced re-run

    def rerun_after_tweak(self) -> None:
        """Re-run the last run with the current parameter values, from the earliest affected stage."""
        rec = self.record
        if rec is None:
            return
        if self.worker is not None:
            self.pending_rerun = True
            return
        from napari_unrollrecon.engine import registry

        spec = registry.get(rec.method)
        try:
            values = self._values(spec) if spec.name == self.param_form.spec.name else dict(rec.params)
        except ValueError as exc:
            self.report(str(exc))
            return
        changed = C.changed_params(rec.params, values)
        if not changed:
            return
        start = C.resume_stage(spec, changed, rec.stages_done, rec.cache is not None)
        x = rec.run
        self.views[spec.name] = x.view
        self._start(spec, rec.prepared, values, rec.reference, source=x.source, settings=x.settings,
                    shape=x.shape, ref_name=x.ref_name, mask=x.mask,
                    cache=rec.cache if start > 0 else None, start=start)
        self._say(f"re-running {spec.title} from stage {max(start, 1)} ({', '.join(sorted(changed))} changed)…")

    # ================================================================== compare
    def checked_methods(self) -> list[str]:
        out = []
        for i in range(self.compare_list.count()):
            item = self.compare_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(Qt.ItemDataRole.UserRole))
        return out

    def compare(self) -> None:
        """Run every checked method on the same input; show them side by side, each panel
        labelled with its method and scores, next to the reference; a table in the dock."""
        from napari.qt.threading import create_worker

        from napari_unrollrecon.engine import registry

        if self.worker is not None:
            self.report("a run is in progress; press Stop first")
            return
        try:
            names = self.checked_methods()
            if len(names) < 1:
                raise C.InputError("check at least one method in the Compare list")
            jobs = []
            for name in names:
                spec = registry.get(name)
                values = C.coerce_params(spec, self.edits.values(spec, self._modality))
                missing = C.missing_weights(spec, values)
                if missing:
                    raise C.InputError(missing)
                jobs.append((spec, values))
            layer, data, settings, mask, reference, shape = self._gather()
        except (ValueError, ImportError, KeyError) as exc:
            self.report(str(exc).strip("'\""))
            return
        self.run_count += 1
        self.table.setRowCount(0)
        ref_name = self._reference_name()
        titles = {s.name: s.title for s, _ in jobs}
        slots = ([("reference", f"reference\n{_short(ref_name, 30)}")] if reference is not None else []) + \
                [(s.name, f"{s.title}\nrunning…") for s, _ in jobs]
        self.active = C.CompareState(spec=jobs[0][0], titles=titles, values={s.name: v for s, v in jobs},
                                     reference=reference, source=layer.name, settings=settings, shape=tuple(shape),
                                     ref_name=ref_name, mask=mask, slots=slots, tag=self.run_count,
                                     t0=time.perf_counter())
        self.tabs.setCurrentIndex(1)
        self._hide_our_layers()
        if self.viewer.canvas.grid.enabled:
            self.viewer.canvas.grid.enabled = False  # our panels are laid out in world coordinates
        self.shown = None
        for spec, _ in jobs:  # layers made now: made later they would hold the GIL and inflate the times
            layer = self._compare_layer(spec.name, np.zeros(shape, np.float32), reference,
                                        {"kind": "compare", "method": spec.name, "title": spec.title},
                                        f"{spec.title} [compare]")
            layer.visible = False
        self._arrange_compare()
        self._overlay(self._compare_overlay(), "bottom_left")
        self._say(f"comparing {len(jobs)} methods on '{layer.name}'…")
        self.worker = create_worker(C.drive_many, jobs, self._prepare_fn(data, settings, mask), reference,
                                    _start_thread=False)
        self._connect(self.worker, "compare")
        self.worker.start()
        self._running_ui(True)

    def _arrange_compare(self, fit: bool = True) -> None:
        a = self.active
        entries = []
        for key, caption in a.slots:
            layer = self.compare_layers.get(key)
            done = key == "reference" or key in a.layers
            entries.append((layer if done and layer in self.viewer.layers else None, caption))
        if a.reference is not None and entries:
            entries[0] = (self._compare_layer("reference", a.reference, a.reference,
                                              {"kind": "compare", "method": "reference", "source": a.ref_name},
                                              "reference [compare]"), entries[0][1])
        self.panels.arrange(entries, a.shape[-2:], fit=fit)

    def _compare_layer(self, key: str, image, reference, meta: dict, name: str):
        """A compare panel layer: reused from the previous compare (one per method)."""
        lim = C.display_limits(image, reference)
        layer = self.compare_layers.get(key)
        if layer is None or layer not in self.viewer.layers or layer.ndim != image.ndim:
            layer = self.viewer.add_image(image, name=name, contrast_limits=lim, metadata={C.META_KEY: meta})
            self.compare_layers[key] = layer
        else:
            layer.data = image
            layer.contrast_limits = lim
            layer.metadata[C.META_KEY] = meta
        return layer

    def _compare_overlay(self) -> str:
        a = self.active
        text = f"Compare on '{_short(a.source)}' · {a.settings.describe()}"
        if a.reference is not None:
            text += f"\nPSNR / SSIM vs '{_short(a.ref_name, 30)}' · table in the dock"
        return text

    def _on_compare_outcome(self, outcome) -> None:
        a = self.active
        title = a.titles.get(outcome.method, outcome.method)
        slot = next((i for i, (k, _) in enumerate(a.slots) if k == outcome.method), None)
        row = self.table.rowCount()
        self.table.insertRow(row)
        if outcome.error:
            cells = [title, "failed", "", ""]
            caption = f"{title}\nfailed (see the dock)"
            self.report(outcome.error)
        else:
            r = outcome.result
            m = r.metrics
            cells = [title, f"{m['psnr']:.2f}" if m else "–", f"{m.get('ssim', float('nan')):.4f}" if m else "–",
                     f"{r.seconds:.2f}"]
            score = f"{m['psnr']:.2f} dB · SSIM {m.get('ssim', float('nan')):.3f}" if m else "no reference"
            caption = f"{title}\n{score} · {r.seconds:.1f} s"
            meta = {"kind": "compare", "method": r.method, "title": title, "params": dict(r.params),
                    "metrics": dict(m), "seconds": r.seconds, "source": a.source, "mask": a.mask,
                    "problem": dict(outcome.prepared.meta), "compare": a.tag}
            self._compare_layer(r.method, r.image, a.reference, meta, f"{title} [compare]")
            a.layers.append(r.method)
        if slot is not None:
            a.slots[slot] = (outcome.method, caption)
        a.done += 1
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, col, item)
        self._arrange_compare(fit=False)
        if a.done == len(a.titles):
            self.report(f"✓ compared {len(a.titles)} methods on '{a.source}': labelled panels on the "
                        "canvas, table below", error=False)

    def _hide_our_layers(self) -> None:
        """Hide our earlier outputs (never the user's layers) so the new ones are not covered."""
        for layer in self._our_layers():
            if layer.visible:
                layer.visible = False
        self.panels.clear()

    # ================================================================== teardown
    def closeEvent(self, event):  # noqa: N802 - Qt API
        if self.worker is not None:
            self.worker.quit()
        self.viewer.dims.events.current_step.disconnect(self._on_dims)
        for ev in ("inserted", "removed", "moved"):
            getattr(self.viewer.layers.events, ev).disconnect(self._refresh_layers)
        super().closeEvent(event)


class _EmptySpec:
    """Stand-in when no method fits the modality: an empty form."""

    name = ""
    title = ""
    params = ()
    learned = False

    def defaults(self, modality=None):
        return {}
