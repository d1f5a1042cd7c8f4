"""The Compare section's "show at" row: Compare at a fixed stage, and linked contrast.

* **show at** *final* / *stage k* / *elapsed s*: a Compare records the stages each method
  showed (``engine.compare_at.Trajectory``: every stage of a run of ≤ 32 stages, else the ~5 per
  second the Compare shows); once it has finished, choosing a stage (or a time) re-lays the
  panels from those records - no re-run - each panel and table row then holding the method's
  newest recorded stage ≤ k (or the newest shown within t seconds of its start), its PSNR / SSIM
  and elapsed time there, labelled ``method @ stage/total`` ("first kept" when nothing was
  recorded that early). *final* restores the results.
* **link contrast**: all image panels (reference and reconstructions, of Compare or of a
  side-by-side run; not the |error| and extra maps, which are other quantities) get one contrast
  range - the union of theirs when ticked - and stay linked: changing one changes them all.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QSpinBox, QTableWidgetItem, QWidget

from napari_unrollrecon._widgets._controller import META_KEY, Frame, Outcome
from napari_unrollrecon.engine.compare_at import AT_MODES, Trajectory, shared_limits

_UNLINKED = ("error", "extra", "labels")  # panels of another quantity keep their own contrast


class ContrastLink:
    """One contrast range for the image panels while ``on``; a change to one is copied to all."""

    def __init__(self):
        self.on = False
        self.layers: list = []
        self.limits: tuple | None = None
        self._copying = False

    def follow(self, layers: list) -> None:
        """The panels were (re)laid out: link these (their image panels)."""
        for layer in self.layers:
            layer.events.contrast_limits.disconnect(self._changed)
        self.layers = [lay for lay in layers if lay.metadata.get(META_KEY, {}).get("kind") not in _UNLINKED]
        for layer in self.layers:
            layer.events.contrast_limits.connect(self._changed)
        if self.on:
            self.copy(self.limits or shared_limits([lay.contrast_limits for lay in self.layers]))

    def set_on(self, on: bool) -> None:
        self.on = on
        self.limits = shared_limits([lay.contrast_limits for lay in self.layers]) if on else None
        self.copy(self.limits)

    def held(self, limits):
        """The limits a panel gets: the linked ones while linked, else ``limits``."""
        return self.limits if self.on and self.limits is not None else limits

    def _changed(self, event=None) -> None:
        if self.on and not self._copying and event is not None:
            self.limits = tuple(map(float, event.source.contrast_limits))
            self.copy(self.limits)

    def copy(self, limits) -> None:
        if limits is None:
            return
        self._copying = True
        try:
            for layer in self.layers:
                if not np.allclose(layer.contrast_limits, limits):
                    layer.contrast_limits = limits
        finally:
            self._copying = False


class CompareAt(QWidget):
    """[final results | at stage k | at elapsed s] [k or t] · [link contrast]."""

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.at_combo = QComboBox()
        for key, label in AT_MODES.items():
            self.at_combo.addItem(label, key)
        self.at_combo.setToolTip("re-lay a finished Compare at every method's stage k, or at equal elapsed time "
                                 "(from the recorded stages; nothing is re-run)")
        self.stage_spin = QSpinBox(minimum=1, maximum=1, value=1)
        self.time_spin = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=1e5, singleStep=0.5, value=1.0, suffix=" s")
        self.link_check = QCheckBox("link contrast")
        self.link_check.setToolTip("one contrast range for the reference and every result panel (Compare and "
                                   "side by side); changing one changes them all")
        for w in (self.at_combo, self.stage_spin, self.time_spin):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.link_check)
        self.dock = None
        self.link = ContrastLink()
        self.runs: dict[str, Trajectory] = {}
        self.finals: dict[str, tuple] = {}  # method -> (final image, its panel caption, its table cells)
        self.order: list[str] = []  # methods in the order their table rows were added
        self.tag = None
        self._mode_shown()

    def attach(self, dock) -> None:
        """Wire to the dock: its panels report each layout, the controls act on its Compare."""
        self.dock = dock
        dock.panels.on_arranged = self.link.follow
        self.at_combo.currentIndexChanged.connect(self._mode_shown)
        for signal in (self.at_combo.currentIndexChanged, self.stage_spin.valueChanged, self.time_spin.valueChanged):
            signal.connect(self.apply)
        self.link_check.toggled.connect(self.link.set_on)

    def mode(self) -> tuple[str, float]:
        key = self.at_combo.currentData()
        return key, float(self.stage_spin.value() if key == "stage" else self.time_spin.value())

    def _mode_shown(self, *_) -> None:
        key = self.at_combo.currentData()
        self.stage_spin.setVisible(key == "stage")
        self.time_spin.setVisible(key == "time")

    # ------------------------------------------------------------------ recording a Compare
    def begin(self, state, worker) -> None:
        """A Compare starts: forget the last one's records, show finals, record this one's stages."""
        self.runs, self.finals, self.order, self.tag = {}, {}, [], state.tag
        self.link.limits = None  # a new input: the linked range is found again from its panels
        self.at_combo.blockSignals(True)
        self.at_combo.setCurrentIndex(0)
        self.at_combo.blockSignals(False)
        self._mode_shown()
        self.at_combo.setEnabled(False)
        worker.yielded.connect(self.record)

    def record(self, item) -> None:
        """A worker item of the Compare: a shown stage is recorded, an outcome ends a method."""
        if isinstance(item, Outcome):
            self.order.append(item.method)
            if item.result is not None:
                self.runs.setdefault(item.method, Trajectory())
                self.finals[item.method] = (np.asarray(item.result.image, np.float32), None, None)
            state = self._state()
            if state is not None and len(self.order) == len(state.titles):
                self.at_combo.setEnabled(True)
                self.stage_spin.setMaximum(max([t.total for t in self.runs.values()] + [1]))
            return
        if isinstance(item, Frame) and item.show:  # (a Notice while the problem is built is no stage)
            u = item.update
            self.runs.setdefault(item.method, Trajectory()).add(u.stage, u.total, u.elapsed, u.image, u.metrics)

    def _state(self):
        a = getattr(self.dock, "active", None)
        return a if a is not None and a.compare and a.tag == self.tag else None

    # ------------------------------------------------------------------ re-laying it
    def apply(self, *_) -> None:
        """Re-lay the finished Compare's panels and table at the chosen stage / time."""
        a, dock = self._state(), self.dock
        if a is None or a.done < len(a.titles):
            return
        mode, value = self.mode()
        for method in a.layers:
            layer = dock.compare_layers.get(method)
            if layer is None or layer not in dock.viewer.layers or method not in self.finals:
                continue
            self._remember_final(a, method)
            image, caption, cells = self._at(a, method, mode, value)
            if layer.data.shape == image.shape:
                layer.data = image
            slot = next(i for i, (k, _) in enumerate(a.slots) if k == method)
            a.slots[slot] = (method, caption)
            self._set_row(self.order.index(method), cells)
        dock._arrange_compare(fit=False)
        where = "final results" if mode == "final" else f"each method's newest stage ≤ {int(value)}" \
            if mode == "stage" else f"each method's newest stage within {value:g} s of its start"
        dock._say(f"Compare shows {where} (recorded stages, not re-run)")

    def _remember_final(self, a, method: str) -> None:
        image, caption, _ = self.finals[method]
        if caption is None:
            row = self.order.index(method)
            cells = [self.dock.table.item(row, c).text() for c in range(self.dock.table.columnCount())]
            self.finals[method] = (image, dict(a.slots)[method], cells)

    def _at(self, a, method: str, mode: str, value: float):
        """(image, panel caption, table cells) of ``method`` at the chosen point."""
        snap = self.runs[method].at(mode, value) if mode != "final" else None
        if snap is None:
            return self.finals[method]
        m, title = snap.metrics, a.titles.get(method, method)
        score = f"{m['psnr']:.2f} dB · SSIM {m.get('ssim', float('nan')):.3f}" if "psnr" in m else "no reference"
        at = f"{title} @ {snap.stage}/{snap.total or snap.stage}"
        if (snap.stage if mode == "stage" else snap.elapsed) > value + 1e-9:
            at += " (first kept)"  # nothing was recorded that early: say so rather than pretend
        cells = [at, f"{m['psnr']:.2f}" if "psnr" in m else "–", f"{m['ssim']:.4f}" if "ssim" in m else "–",
                 f"{snap.elapsed:.2f}"]
        return snap.image, f"{at}\n{score} · {snap.elapsed:.1f} s", cells

    def _set_row(self, row: int, cells: list) -> None:
        table = self.dock.table
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(text)  # the method cell may be elided at the dock's width
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            table.setItem(row, col, item)
