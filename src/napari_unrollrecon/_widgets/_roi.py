"""ROI metrics and line profiles in the dock (its "ROI" tab).

Draw a rectangle, polygon or ellipse and/or a line in a Shapes layer (the tab's buttons add a
layer named "ROI" in the right mode). The tab lists, for every panel on the canvas - the run's
stage stack, or each side-by-side / Compare panel - PSNR and SSIM inside the area against the
reference (method results only), and mean and std (every panel); the plot shows every panel's
profile along the line. A shape drawn on one panel applies at the same place in all of them.
Updates follow the stage slider, shape edits and data changes (throttled to 5 per second).
The numbers come from :mod:`napari_unrollrecon.engine.roi` (Qt-free, unit-tested).
"""

from __future__ import annotations

import math

import numpy as np
from qtpy.QtCore import QObject, Qt, QTimer
from qtpy.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)
from superqt.utils import qthrottled

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets import _view as V
from napari_unrollrecon._widgets._profile_plot import ProfilePlot
from napari_unrollrecon.engine import roi

ROI_NAME = "ROI"
ROI_META = "unrollrecon_roi"  # marks the layer the tab made (not one of the dock's outputs)
#: layer events after which the numbers may change (any layer's, re-emitted by the layer list)
_TRIGGERS = frozenset({"data", "set_data", "translate", "visible", "inserted", "removed"})
_TABLE_ROWS = 5  # rows visible without scrolling (reference + 4 methods)
_MODES = {"rectangle": ("add_rectangle", "yellow"), "polygon": ("add_polygon", "yellow"),
          "line": ("add_line", "cyan")}
_HINT = ("Draw a rectangle / polygon / ellipse (metrics inside) and a line (profile) in a Shapes "
         "layer. ")
_HINT_MORE = "The selected shape counts, else the newest; drawn on one panel, it applies to every panel."


class RoiTab(QWidget):
    """Buttons that add the ROI layer in a drawing mode, the metrics table, the profile plot."""

    COLUMNS = ("panel", "PSNR dB", "SSIM", "mean", "std")

    def __init__(self, parent=None):
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(2, 2, 2, 2)
        row = QHBoxLayout()
        self.buttons = {}
        for key, text in (("rectangle", "▭ rectangle"), ("polygon", "⬠ polygon"), ("line", "╱ line")):
            self.buttons[key] = QPushButton(text)
            self.buttons[key].setToolTip(f"draw a {key} in the '{ROI_NAME}' shapes layer (made if missing)")
            row.addWidget(self.buttons[key])
        v.addLayout(row)
        self.hint = QLabel(_HINT + _HINT_MORE)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #9aa;")
        v.addWidget(self.hint)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # panel names get the rest
        self.table.verticalHeader().setVisible(False)
        rows = self.table.verticalHeader().defaultSectionSize()
        self.table.setFixedHeight(header.sizeHint().height() + _TABLE_ROWS * rows + 4)
        v.addWidget(self.table)
        self.plot = ProfilePlot()
        v.addWidget(self.plot, 1)

    def show_rows(self, rows: list[dict]) -> None:
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = (r["name"], _fmt(r.get("psnr"), ".2f"), _fmt(r.get("ssim"), ".3f"),
                     _fmt(r["mean"], ".4g"), _fmt(r["std"], ".4g"))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(i, j, item)


def _fmt(value, spec: str) -> str:
    if value is None:
        return "–"
    return "∞" if value == math.inf else "nan" if math.isnan(value) else format(value, spec)


def find_roi_layer(viewer):
    """The layer the tab made, else the topmost Shapes layer (the user's own), else None."""
    from napari.layers import Shapes

    shapes = [layer for layer in viewer.layers if isinstance(layer, Shapes)]
    ours = [layer for layer in shapes if layer.metadata.get(ROI_META)]
    return (ours or shapes or [None])[-1]


def pick_shape(layer, types) -> roi.Shape | None:
    """The selected shape of one of ``types``, else the newest, in world coordinates."""
    kinds = list(layer.shape_type)
    order = sorted(layer.selected_data, reverse=True) + list(range(len(kinds) - 1, -1, -1))
    for i in order:
        if i < len(kinds) and kinds[i] in types:
            verts = np.array([layer.data_to_world(v) for v in np.asarray(layer.data[i], float)])
            return roi.Shape(kinds[i], verts[:, -2:])
    return None


def panel_kind(layer) -> str:
    info = layer.metadata.get(C.META_KEY, {})
    kind = info.get("kind")
    if kind == "reference" or (kind == "compare" and info.get("method") == "reference"):
        return "reference"
    return {"reconstruction": "method", "compare": "method", "error": "error", "extra": "extra"}.get(kind, "image")


def panel_name(layer) -> str:
    return layer.name.replace(" [compare]", "")


class RoiTool(QObject):
    """Keeps the ROI tab in step with the canvas for one dock (:class:`._dock.ReconWidget`)."""

    def __init__(self, dock):
        super().__init__(dock)
        self.dock, self.viewer = dock, dock.viewer
        self.tab = RoiTab()
        dock.tabs.addTab(self.tab, "ROI")
        for key, button in self.tab.buttons.items():
            button.clicked.connect(lambda _=False, k=key: self.draw(k))
        self.update_soon = qthrottled(self.update, timeout=200, leading=False, parent=self)
        self.viewer.layers.events.connect(self._layer_event)
        self.viewer.dims.events.current_step.connect(self._changed)

    def disconnect_viewer(self) -> None:
        self.viewer.layers.events.disconnect(self._layer_event)
        self.viewer.dims.events.current_step.disconnect(self._changed)

    # ------------------------------------------------------------------ the ROI layer
    def draw(self, what: str) -> None:
        """Select the ROI layer (made if missing) in the drawing mode for ``what``."""
        layer = find_roi_layer(self.viewer)
        if layer is None:
            layer = self.viewer.add_shapes(name=ROI_NAME, ndim=2, edge_width=2.0, face_color="transparent",
                                           edge_color="yellow", metadata={ROI_META: True})
        mode, colour = _MODES[what]
        layer.current_edge_color = colour
        layer.current_face_color = "transparent"
        self.viewer.layers.selection.active = layer
        layer.mode = mode
        self.tab.hint.setText(f"Draw the {what} on the canvas. " + _HINT_MORE)

    def _layer_event(self, event) -> None:
        if event.type not in _TRIGGERS or find_roi_layer(self.viewer) is None:
            return
        if event.type == "inserted":
            QTimer.singleShot(0, self._raise_roi)  # panels added later would cover the shapes
        self.update_soon()

    def _changed(self, event=None) -> None:
        if find_roi_layer(self.viewer) is not None:
            self.update_soon()

    def _raise_roi(self) -> None:
        layer = find_roi_layer(self.viewer)
        if layer is None or layer not in self.viewer.layers:
            return
        i = self.viewer.layers.index(layer)
        if i != len(self.viewer.layers) - 1:
            with self.viewer.layers.events.moved.blocker(self.dock._refresh_layers):  # not an input change
                self.viewer.layers.move(i, len(self.viewer.layers))

    # ------------------------------------------------------------------ the numbers
    def panels(self) -> list[roi.Panel]:
        """The panels laid out side by side (run or Compare), else the run's stack and, for
        comparison, the reference it is scored against."""
        viewer, dock = self.viewer, self.dock
        layers = [layer for layer in dock.panels.layers if V._alive(viewer, layer)]
        if not layers and dock.shown is not None and V._alive(viewer, dock.shown.layer) and dock.shown.layer.visible:
            layers = [dock.shown.layer]
        out = [roi.Panel(panel_name(layer), panel_kind(layer), layer.data, tuple(layer.translate[-2:]))
               for layer in layers]
        reference = self.reference()
        if reference is not None and out and not any(p.kind == "reference" for p in out):
            out.append(roi.Panel("reference", "reference", reference))
        return out

    def reference(self):
        a = self.dock.active
        return None if a is None else a.reference

    def update(self) -> None:
        layer = find_roi_layer(self.viewer)
        if layer is None:
            return
        area, line = pick_shape(layer, roi.AREA_TYPES), pick_shape(layer, roi.LINE_TYPES)
        panels = self.panels()
        if not panels:
            self.tab.show_rows([])
            self.tab.plot.clear("run a method (or Compare) first: the profile is of its panels")
            return
        try:
            rows, curves = roi.measure_panels(panels, self.reference(), self.viewer.dims.current_step, area, line)
        except ValueError as exc:  # e.g. a shape type without an area
            self.dock._say(f"ROI: {exc}")
            return
        self.tab.show_rows(rows)
        if curves:
            self.tab.plot.set_curves(curves)
        else:
            self.tab.plot.clear("draw a line in the ROI layer for a profile")
