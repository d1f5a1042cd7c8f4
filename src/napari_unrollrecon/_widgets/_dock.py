"""The reconstruction dock: input, sampling, method, Run/Stop, live plot, compare.

A thin Qt layer over :mod:`._controller`. The method runs in a napari ``GeneratorWorker``
(:func:`._controller.drive`); layers are touched only in the slots connected to the worker's
signals, which run in the main thread. Controls for a method are built from its ``Param``
declarations (:class:`._params.ParamForm`), so a newly registered method needs no widget code.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets._params import ParamForm
from napari_unrollrecon._widgets._plot import LivePlot

_NONE = "(none)"
_AUTO_REF = "(input image = ground truth)"
_GENERATED = "(generated)"
_KIND_CHOICES = ("auto", "image", "kspace", "sinogram")
_MASK_KINDS_FALLBACK = ("cartesian", "equispaced", "radial", "random", "gaussian", "poisson")
_OURS = ("reconstruction", "error", "mask-preview", "compare")  # our own output layers


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


class ReconWidget(QWidget):
    """Dock widget: reconstruct the selected layer with any registered method, stage by stage."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.active: dict | None = None  # state of the running (or just finished) run
        self.record: C.RunRecord | None = None  # last finished run, for tweak re-runs
        self.values_by_method: dict[str, dict] = {}
        self.pending_rerun = False
        self.run_count = 0
        self.pbar = None
        self._queue: deque = deque()
        self._busy = False
        self._flush_scheduled = False
        self._pbar_time = 0.0
        self.mask_preview_name = "sampling mask (preview)"

        self._tweak_timer = QTimer(self, singleShot=True, interval=300)
        self._tweak_timer.timeout.connect(self.rerun_after_tweak)
        self._mask_timer = QTimer(self, singleShot=True, interval=120)
        self._mask_timer.timeout.connect(self.update_mask_preview)

        self._build_ui()
        for ev in ("inserted", "removed", "moved"):
            getattr(self.viewer.layers.events, ev).connect(self._refresh_layers)
        self._refresh_layers()

    # ================================================================== UI
    def _build_ui(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)

        box = QGroupBox("Input")
        form = QFormLayout(box)
        self.input_combo = QComboBox()
        self.kind_combo = QComboBox()
        self.kind_combo.addItems(["auto", "image", "k-space", "sinogram"])
        self.modality_combo = QComboBox()
        for key, label in C.MODALITIES.items():
            self.modality_combo.addItem(label, key)
        self.ref_combo = QComboBox()
        form.addRow("data layer", self.input_combo)
        form.addRow("data is", self.kind_combo)
        form.addRow("modality", self.modality_combo)
        form.addRow("reference", self.ref_combo)
        root.addWidget(box)

        box = QGroupBox("Sampling")
        self.sampling_form = form = QFormLayout(box)
        self.mask_combo = QComboBox()
        self.mask_combo.addItems(list(_mask_kinds()))
        self.mask_layer_combo = QComboBox()
        self.ratio_spin = QDoubleSpinBox(decimals=3, minimum=0.01, maximum=1.0, singleStep=0.05, value=0.25)
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.views_spin = QSpinBox(minimum=2, maximum=2048, value=60)
        self.noise_spin = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1.0, singleStep=0.01, value=0.0)
        self.noise_spin.setToolTip("complex Gaussian noise, relative to the RMS of the simulated measurements")
        self.preview_check = QCheckBox("show mask layer")
        self.preview_check.setChecked(True)
        self.realised_label = QLabel("")
        form.addRow("mask", self.mask_combo)
        form.addRow("mask layer", self.mask_layer_combo)
        form.addRow("ratio", self.ratio_spin)
        form.addRow("seed", self.seed_spin)
        form.addRow("views", self.views_spin)
        form.addRow("noise", self.noise_spin)
        form.addRow(self.preview_check, self.realised_label)
        root.addWidget(box)

        box = QGroupBox("Method")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.method_combo = QComboBox()
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda", "mps"])
        row.addWidget(self.method_combo, 3)
        row.addWidget(QLabel("device"))
        row.addWidget(self.device_combo, 1)
        v.addLayout(row)
        self.method_info = QLabel("")
        self.method_info.setWordWrap(True)
        self.method_info.setStyleSheet("color: #9aa;")
        v.addWidget(self.method_info)
        self.param_form = ParamForm()
        v.addWidget(self.param_form)
        row = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        row.addWidget(self.run_button)
        row.addWidget(self.stop_button)
        v.addLayout(row)
        root.addWidget(box)

        self.status = QLabel("Pick a data layer (File > Open Sample > UnrollRecon), then press Run.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.status)

        self.tabs = QTabWidget()
        plot_tab = QWidget()
        pv = QVBoxLayout(plot_tab)
        pv.setContentsMargins(2, 2, 2, 2)
        self.plot = LivePlot()
        pv.addWidget(self.plot)
        self.tabs.addTab(plot_tab, "Live plot")
        cmp_tab = QWidget()
        cv = QVBoxLayout(cmp_tab)
        cv.setContentsMargins(2, 2, 2, 2)
        self.compare_list = QListWidget()
        self.compare_list.setMaximumHeight(90)
        self.compare_button = QPushButton("Compare checked methods side by side")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["method", "PSNR dB", "SSIM", "time s"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        cv.addWidget(self.compare_list)
        cv.addWidget(self.compare_button)
        cv.addWidget(self.table)
        self.tabs.addTab(cmp_tab, "Compare")
        root.addWidget(self.tabs, 1)

        self.input_combo.currentIndexChanged.connect(self._input_changed)
        self.kind_combo.currentIndexChanged.connect(self._input_changed)
        self.modality_combo.currentIndexChanged.connect(self._modality_changed)
        self.ref_combo.currentIndexChanged.connect(self._invalidate)
        for w in (self.mask_combo, self.mask_layer_combo):
            w.currentIndexChanged.connect(self._sampling_changed)
        for w in (self.ratio_spin, self.seed_spin, self.views_spin, self.noise_spin):
            w.valueChanged.connect(self._sampling_changed)
        self.preview_check.toggled.connect(self._sampling_changed)
        self.device_combo.currentIndexChanged.connect(self._invalidate)
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.param_form.changed.connect(self._param_changed)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.compare_button.clicked.connect(self.compare)
        self._modality_changed()

    # ================================================================== layer lists
    def _image_layers(self, ours: bool = False):
        from napari.layers import Image

        out = []
        for layer in self.viewer.layers:
            if not isinstance(layer, Image):
                continue
            kind = layer.metadata.get(C.META_KEY, {}).get("kind")
            if ours or kind not in _OURS:
                out.append(layer)
        return out

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
        layers = self._image_layers()
        names = [layer.name for layer in layers]
        current = self.input_combo.currentText()
        new = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
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
        self._modality_changed()

    def _kind(self, layer) -> str:
        choice = _KIND_CHOICES[self.kind_combo.currentIndex()]
        return C.guess_kind(layer.data, layer.metadata) if choice == "auto" else choice

    def _modality(self) -> str:
        return self.modality_combo.currentData()

    def _modality_changed(self, *_) -> None:
        from napari_unrollrecon.engine import registry

        modality = self._modality()
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
        default = current if current in names else next((n for n in ("tv", "fbp") if n in names), names[0] if names else None)
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

    def _sampling_changed(self, *_) -> None:
        self._invalidate()
        self._mask_timer.start()

    def _invalidate(self, *_) -> None:
        """Input or sampling may have changed: a tweak re-runs the last problem only if the key
        still matches (see :meth:`_input_key`); nothing to do eagerly."""

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
            self.method_info.setText("no method handles this modality yet")
            return
        spec = registry.get(name)
        self.param_form.build(spec, self.values_by_method.get(name))
        info = spec.description
        if spec.learned:
            missing = C.missing_weights(spec, self.param_form.values())
            info += "\n" + (missing or "weights loaded")
        if any(p.live for p in spec.params):
            info += "\n● = can be changed while it runs"
        self.method_info.setText(info.strip())

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
            modality=self._modality(),
            kind=self._kind(layer) if layer is not None else "image",
            mask_kind=self.mask_combo.currentText(),
            ratio=self.ratio_spin.value(),
            seed=self.seed_spin.value(),
            n_views=self.views_spin.value(),
            noise=self.noise_spin.value(),
            device=self.device_combo.currentText(),
        )

    def _gather(self):
        """Checked input array, settings, mask and reference; raises InputError with the fix."""
        layer = self._layer(self.input_combo.currentText())
        if layer is None:
            raise C.InputError("no data layer selected: open a file or a sample (File > Open Sample > UnrollRecon)")
        settings = self.settings()
        data = C.check_input(C.layer_array(layer.data, layer.metadata), settings.kind, settings.modality, rgb=layer.rgb)
        mask = None
        if settings.modality != "ct":
            mask_layer = self._layer(self.mask_layer_combo.currentText())
            if mask_layer is not None:
                mask = C.check_mask(mask_layer.data, data.shape)
            else:
                mask = C.check_mask(C.make_mask(settings, data.shape), data.shape)
        reference = self._reference(data, settings)
        return layer, data, settings, mask, reference

    def _reference(self, data, settings):
        choice = self.ref_combo.currentText()
        if choice == _NONE:
            return None
        if choice == _AUTO_REF or choice not in self.viewer.layers:
            return C.auto_reference(data, settings.kind)
        ref_layer = self.viewer.layers[choice]
        ref = C.layer_array(ref_layer.data, ref_layer.metadata)
        if settings.kind == "sinogram":  # image size known only after the operator is built
            return np.abs(ref).astype(np.float32)
        return C.check_reference(ref, data.shape)

    def _prepare_fn(self, data, settings, mask):
        generated = self.mask_layer_combo.currentText() == _GENERATED

        def prepare():
            prepared = C.build_problem(data, settings, mask)
            if generated and mask is not None:
                prepared.meta.update(mask_kind=settings.mask_kind, ratio=settings.ratio, seed=settings.seed)
            return prepared

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
        self.status.setStyleSheet("")
        self.status.setText(message)

    # ================================================================== mask preview
    def update_mask_preview(self) -> None:
        if self._modality() == "ct":
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
            mask = C.check_mask(mask_layer.data, shape) if mask_layer else C.make_mask(settings, shape)
        except (ValueError, ImportError) as exc:
            self.realised_label.setText(f"mask: {exc}")
            return
        self.realised_label.setText(f"realised ratio {np.mean(mask != 0):.3f} (acceleration ×{1 / max(np.mean(mask != 0), 1e-9):.1f})")
        preview = self._layer(self.mask_preview_name)
        if not self.preview_check.isChecked():
            if preview is not None:
                preview.visible = False
            return
        if preview is None:
            self.viewer.add_image(mask, name=self.mask_preview_name, colormap="cyan", blending="additive",
                                  opacity=0.5, contrast_limits=(0, 1), metadata={C.META_KEY: {"kind": "mask-preview"}})
        else:
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
            layer, data, settings, mask, reference = self._gather()
        except (ValueError, ImportError, KeyError) as exc:
            self.report(str(exc).strip("'\""))
            return
        self.record = None
        self._start(spec, self._prepare_fn(data, settings, mask), values, reference,
                     source=layer.name, settings=settings, mask=mask)

    def _start(self, spec, prepare, values, reference, source, settings, mask=None,
               cache=None, start=0, reuse=None) -> None:
        from napari.qt.threading import create_worker
        from napari.utils import progress

        if reuse is None:
            self.run_count += 1
            name = f"{spec.name} #{self.run_count}"  # short: the layer list truncates long names
        else:
            name = reuse["name"]
        self.active = dict(spec=spec, values=dict(values), sent={}, key=self._input_key(), reference=reference, source=source,
                           settings=settings, mask=mask, name=name, start=start, t0=time.perf_counter(),
                           first_frame=None, last=None, reuse=reuse, prepare=prepare)
        self.plot.clear()
        self.worker = create_worker(C.drive, spec, prepare, values, reference, cache, start, _start_thread=False)
        self._connect(self.worker, spec.title)
        self.pbar = progress(total=0, desc=f"{spec.title}")
        self.run_button.setEnabled(False)
        self.compare_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._say(f"{spec.title}: starting on '{source}' ({settings.describe()})…")
        self.worker.start()

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
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            QTimer.singleShot(0, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._busy:  # fired inside a nested processEvents: the outer flush reschedules
            return
        self._busy = True
        try:
            for _ in range(len(self._queue)):  # what is queued now; later signals: next flush
                fn, a = self._queue.popleft()
                fn(*a)
        finally:
            self._busy = False
        if self._queue:
            self._schedule_flush()

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
        a["last"] = u
        if not frame.show:
            return
        now = time.perf_counter()
        if self.pbar is not None and (now - self._pbar_time > 0.5 or u.stage >= u.total):
            self._pbar_time = now  # the bar repaints via processEvents: update it ≤ 2 times a second
            if self.pbar.total != u.total:
                self.pbar.total = u.total
            self.pbar.update(u.stage - self.pbar.n)
        if a.get("compare"):
            self._say(f"comparing: {a['titles'][frame.method]} stage {u.stage}/{u.total}")
            return
        if a["first_frame"] is None:
            a["first_frame"] = time.perf_counter() - a["t0"]
            self._open_layers(u)
        a["stack"].append(u.image, u.stage, u.label)
        a["layer"].data = a["stack"].view
        if a["reference"] is not None and a["err_stack"] is not None and u.image.shape == a["reference"].shape:
            a["err_stack"].append(np.abs(u.image - a["reference"]), u.stage)
            if a["err_layer"].visible:  # a hidden layer is refreshed when shown (saves a slice/stage)
                a["err_layer"].data = a["err_stack"].view
        axis = self.viewer.dims.ndim - a["layer"].ndim
        self.viewer.dims.set_current_step(axis, len(a["stack"]) - 1)
        self.plot.set_total(u.total)
        for key in ("psnr", "ssim"):
            self.plot.add(key, u.stage, u.metrics.get(key))
        self.plot.add("residual", u.stage, u.residual)
        self._say(self._progress_text(a["spec"], u))
        self._overlay(f"{a['spec'].title} · stage {u.stage}/{u.total}"
                      + (f" · PSNR {u.metrics['psnr']:.2f} dB" if u.metrics else "")
                      + f"\ndata: '{a['source']}' ({a['settings'].describe()})")

    def _overlay(self, text: str) -> None:
        """What is reconstructed, with what and how well, written on the canvas itself."""
        ov = self.viewer.text_overlay
        if not ov.visible:  # first use: a compact corner label (the user may restyle it after)
            ov.position, ov.font_size, ov.color = "top_left", 10, "white"
        ov.text = text
        ov.visible = True

    def _progress_text(self, spec, u) -> str:
        text = f"{spec.title}: {u.label or f'stage {u.stage}/{u.total}'}"
        if u.metrics:
            text += f" · PSNR {u.metrics['psnr']:.2f} dB"
            if "ssim" in u.metrics:
                text += f" · SSIM {u.metrics['ssim']:.3f}"
        if u.residual is not None:
            text += f" · residual {u.residual:.2e}"
        return text + f" · {u.elapsed:.1f} s"

    def _open_layers(self, u) -> None:
        """Create (or reuse, for a tweak re-run) the stage-stack layer and the error map."""
        a = self.active
        meta = {"kind": "reconstruction", "method": a["spec"].name, "title": a["spec"].title,
                "params": dict(a["values"]), "source": a["source"], "mask": a["mask"],
                "settings": vars(a["settings"]).copy()}
        reuse = a["reuse"]
        layer = self._layer(reuse["name"]) if reuse else None
        if layer is not None and reuse["stack"].buf.shape[1:] == u.image.shape:
            a["stack"], a["layer"] = reuse["stack"], layer
            a["stack"].truncate_after(a["start"] - 1)
            layer.metadata[C.META_KEY].update(meta)
        else:
            a["stack"] = C.StageStack(u.image.shape)
            a["layer"] = self.viewer.add_image(a["stack"].view, name=a["name"], metadata={C.META_KEY: meta},
                                               contrast_limits=C.display_limits(u.image, a["reference"]))
        a["err_stack"] = a["err_layer"] = None
        ref = a["reference"]
        if ref is not None and ref.shape == u.image.shape:
            err_name = f"|error| {a['name']}"
            err_layer = self._layer(err_name)
            if err_layer is not None and reuse and reuse.get("err_stack") is not None:
                a["err_stack"], a["err_layer"] = reuse["err_stack"], err_layer
                a["err_stack"].truncate_after(a["start"] - 1)
            else:
                a["err_stack"] = C.StageStack(u.image.shape)
                hi = 0.2 * float(ref.max() - ref.min() or 1.0)
                a["err_layer"] = self.viewer.add_image(
                    a["err_stack"].view, name=err_name, colormap="magma", contrast_limits=(0.0, hi),
                    metadata={C.META_KEY: {"kind": "error", "source": a["name"]}}, visible=False)
                stack, lay = a["err_stack"], a["err_layer"]
                lay.events.visible.connect(lambda e: setattr(lay, "data", stack.view) if lay.visible else None)
        a["layer"].metadata[C.META_KEY]["stages"] = a["stack"].stages

    def _on_returned(self, outcome) -> None:
        a = self.active
        if a is None or outcome is None:
            return
        if outcome.error:
            self.report(outcome.error + "  (your layers were not changed)")
            return
        result = outcome.result
        last = a["last"]
        if a.get("layer") is not None:
            info = a["layer"].metadata[C.META_KEY]
            info.update(params=dict(result.params), metrics=dict(result.metrics), seconds=result.seconds,
                        stages=list(a["stack"].stages))
            info.update({k: v for k, v in outcome.prepared.meta.items() if k not in info.get("settings", {})})
            info["problem"] = dict(outcome.prepared.meta)
        text = f"✓ {a['spec'].title} on '{a['source']}': {result.stages} stages in {result.seconds:.2f} s"
        if result.metrics:
            text += f" · PSNR {result.metrics['psnr']:.2f} dB · SSIM {result.metrics.get('ssim', float('nan')):.3f}"
        if a["first_frame"] is not None:
            text += f" · first stage after {a['first_frame']:.2f} s"
        if any(p.live or p.stage is not None for p in a["spec"].params):
            text += "\nChange a parameter to re-run" + (" from the affected stage." if a["spec"].resumable else ".")
        self.report(text, error=False)
        self.record = C.RunRecord(method=a["spec"].name, params=dict(result.params), prepared=outcome.prepared,
                                  reference=a["reference"], cache=outcome.cache,
                                  stages_done=last.stage if last else result.stages, layer_name=a["name"],
                                  settings_key=a["key"],
                                  extra=dict(stack=a.get("stack"), err_stack=a.get("err_stack"),
                                             source=a["source"], settings=a["settings"], mask=a["mask"]))

    def _on_aborted(self) -> None:
        a = self.active or {}
        last = a.get("last")
        where = f" after stage {last.stage}/{last.total}" if last else ""
        self.report(f"stopped{where}; the layer keeps the stages computed so far", error=False)

    def _on_finished(self) -> None:
        if self.pbar is not None:
            self.pbar.close()
            self.pbar = None
        self.worker = None
        self.run_button.setEnabled(True)
        self.compare_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if self.pending_rerun:
            self.pending_rerun = False
            self.rerun_after_tweak()

    # ================================================================== live tweaks
    def _param_changed(self, name: str, value) -> None:
        spec = self.param_form.spec
        if spec is None or not getattr(spec, "name", None):
            return
        self.values_by_method[spec.name] = self.param_form.values()
        try:
            values = C.coerce_params(spec, self.param_form.values())
        except ValueError as exc:
            self.report(str(exc))
            return
        a = self.active
        if self.worker is not None and a is not None and a["spec"].name == spec.name and not a.get("compare"):
            now, later = C.live_changes(spec, a["values"], values)
            if now:
                a["sent"].update(now)
                a["values"].update(now)
                self.worker.send(dict(a["sent"]))  # the worker keeps only the latest send: send all
                self._say(f"sent {', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in now.items())} to the running method")
            if later:
                self._say(f"{', '.join(sorted(later))} will apply when the run is repeated")
                self.pending_rerun = True
            return
        if spec.learned:
            self._method_changed()
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
        x = rec.extra
        reuse = dict(name=rec.layer_name, stack=x["stack"], err_stack=x["err_stack"])
        self._start(spec, rec.prepared, values, rec.reference, source=x["source"], settings=x["settings"],
                    mask=x["mask"], cache=rec.cache if start > 0 else None, start=start, reuse=reuse)
        self._say(f"re-running {spec.title} from stage {start} ({', '.join(sorted(changed))} changed)…")

    # ================================================================== compare
    def checked_methods(self) -> list[str]:
        out = []
        for i in range(self.compare_list.count()):
            item = self.compare_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(Qt.ItemDataRole.UserRole))
        return out

    def compare(self) -> None:
        """Run every checked method on the same input; show them in a grid with a metrics table."""
        from napari.qt.threading import create_worker
        from napari.utils import progress

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
                values = {**spec.defaults(), **self.values_by_method.get(name, {})}
                if name == self.param_form.spec.name:
                    values = self.param_form.values()
                values = C.coerce_params(spec, values)
                missing = C.missing_weights(spec, values)
                if missing:
                    raise C.InputError(missing)
                jobs.append((spec, values))
            layer, data, settings, mask, reference = self._gather()
        except (ValueError, ImportError, KeyError) as exc:
            self.report(str(exc).strip("'\""))
            return
        self.run_count += 1
        self.table.setRowCount(0)
        self.active = dict(compare=True, titles={s.name: s.title for s, _ in jobs}, source=layer.name,
                           settings=settings, mask=mask, reference=reference, last=None, layers=[],
                           tag=self.run_count, values={s.name: v for s, v in jobs}, first_frame=None,
                           spec=jobs[0][0])
        self.worker = create_worker(C.drive_many, jobs, self._prepare_fn(data, settings, mask), reference,
                                    _start_thread=False)
        self._connect(self.worker, "compare")
        self.pbar = progress(total=0, desc="compare")
        self.run_button.setEnabled(False)
        self.compare_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.tabs.setCurrentIndex(1)
        self._say(f"comparing {len(jobs)} methods on '{layer.name}'…")
        self.worker.start()

    def _on_compare_outcome(self, outcome) -> None:
        a = self.active
        title = a["titles"].get(outcome.method, outcome.method)
        row = self.table.rowCount()
        self.table.insertRow(row)
        if outcome.error:
            cells = [title, "failed", "", ""]
            self.report(outcome.error)
        else:
            r = outcome.result
            m = r.metrics
            cells = [title, f"{m['psnr']:.2f}" if m else "–", f"{m.get('ssim', float('nan')):.4f}" if m else "–",
                     f"{r.seconds:.2f}"]
            meta = {"kind": "compare", "method": r.method, "title": title, "params": dict(r.params),
                    "metrics": dict(m), "seconds": r.seconds, "source": a["source"], "mask": a["mask"],
                    "problem": dict(outcome.prepared.meta)}
            if not a["layers"]:
                self._hide_our_layers()
            lim = C.display_limits(r.image, a["reference"])
            layer = self.viewer.add_image(r.image, name=f"{title} [compare {a['tag']}]", contrast_limits=lim,
                                          metadata={C.META_KEY: meta})
            a["layers"].append(layer.name)
            self.viewer.grid.enabled = True
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, col, item)
        self._overlay("compare: " + " | ".join(self._compare_labels())
                      + f"\ndata: '{a['source']}' ({a['settings'].describe()})")
        if len(a["layers"]) + sum(1 for i in range(self.table.rowCount()) if self.table.item(i, 1).text() == "failed") == len(a["titles"]):
            self.report(f"✓ compared {len(a['titles'])} methods on '{a['source']}' (grid view; table below)", error=False)

    def _compare_labels(self) -> list[str]:
        out = []
        for r in range(self.table.rowCount()):
            m, p = self.table.item(r, 0), self.table.item(r, 1)
            if m is not None and p is not None:
                out.append(f"{m.text()} {p.text()} dB")
        return out

    def _hide_our_layers(self) -> None:
        """Grid view shows every visible layer: hide our earlier outputs (never the user's layers)."""
        for layer in self._image_layers(ours=True):
            kind = layer.metadata.get(C.META_KEY, {}).get("kind")
            if kind in _OURS:
                layer.visible = False

    # ================================================================== teardown
    def closeEvent(self, event):  # noqa: N802 - Qt API
        if self.worker is not None:
            self.worker.quit()
        super().closeEvent(event)


class _EmptySpec:
    """Stand-in when no method fits the modality: an empty form."""

    name = ""
    title = ""
    params = ()
    learned = False

    def defaults(self):
        return {}
