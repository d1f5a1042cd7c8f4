"""Controls built from a method's :class:`~napari_unrollrecon.methods.base.Param` declarations.

No per-method widget code: float -> spin box (adaptive steps, enough decimals for log-scale
weights), int -> spin box, bool -> check box, choice -> combo box, path -> line edit and a
"Load <label>…" file picker (e.g. a learned method's ``weights``). Live parameters are marked
with a dot so users know a change reaches a running method. The caller passes the values to
show (the current modality's defaults overlaid with the user's edits, see
``_controller.ParamEdits``).
"""

from __future__ import annotations

import math

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

LIVE_MARK = " ●"


def _decimals(value) -> int:
    """Three significant digits of the shown default (small log-scale weights need many decimals)."""
    v = abs(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value else 1.0
    return max(3, min(8, 2 - int(math.floor(math.log10(v)))))


class ParamForm(QWidget):
    """A form for one method's params; emits ``changed(name, value)`` on every edit."""

    changed = Signal(str, object)

    def __init__(self, spec=None, values: dict | None = None, parent=None):
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        self.layout_.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # long labels do not widen the dock
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.controls: dict[str, tuple[object, QWidget]] = {}
        self.spec = None
        if spec is not None:
            self.build(spec, values)

    def build(self, spec, values: dict | None = None, hints: dict | None = None, modality: str | None = None) -> None:
        """Controls for ``spec.params`` showing ``values`` (missing ones: the plain defaults);
        ``hints`` are placeholder texts of ``path`` controls. Rows of parameters that do nothing
        for ``modality`` (``Param.modalities``) are hidden; their values still go to the method."""
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.controls.clear()
        self.spec = spec
        values = {**{p.name: p.default for p in spec.params}, **(values or {})}
        hints = hints or {}
        for p in spec.params:
            w = self._control(p, values.get(p.name, p.default), hints.get(p.name, ""))
            label = QLabel((p.label or p.name) + (LIVE_MARK if p.live else ""))
            tip = p.help + ("\n● can change while the method runs" if p.live else "")
            label.setToolTip(tip.strip())
            w.setToolTip(tip.strip())
            self.layout_.addRow(label, w)
            self.layout_.setRowVisible(w, p.applies_to(modality))
            self.controls[p.name] = (p, w)

    def _control(self, p, value, hint: str = "") -> QWidget:
        emit = lambda *_: self.changed.emit(p.name, self.value(p.name))  # noqa: E731
        if p.kind == "bool":
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(emit)
        elif p.kind == "choice":
            w = QComboBox()
            w.addItems([str(c) for c in p.choices])
            w.setCurrentIndex(list(p.choices).index(value) if value in p.choices else 0)
            w.currentIndexChanged.connect(emit)
        elif p.kind == "int":
            w = QSpinBox()
            w.setRange(int(p.low if p.low is not None else -(2**31 - 1)), int(p.high if p.high is not None else 2**31 - 1))
            w.setValue(int(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(emit)
        elif p.kind == "path":
            w = QWidget()
            row = QHBoxLayout(w)
            row.setContentsMargins(0, 0, 0, 0)
            edit = QLineEdit(str(value or ""))
            edit.setPlaceholderText(hint or "no file")
            button = QPushButton(f"Load {p.label or p.name}…")
            button.clicked.connect(lambda: self._browse(p, edit))
            edit.editingFinished.connect(emit)
            row.addWidget(edit)
            row.addWidget(button)
            w.edit = edit
        else:
            w = QDoubleSpinBox()
            w.setDecimals(_decimals(value))
            w.setRange(p.low if p.low is not None else -1e12, p.high if p.high is not None else 1e12)
            w.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
            w.setValue(float(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(emit)
        return w

    def _browse(self, p, edit: QLineEdit) -> None:
        what = p.label or p.name
        filters = "Weights (*.safetensors *.pt *.pth);;All files (*)" if p.name == "weights" else "All files (*)"
        path, _ = QFileDialog.getOpenFileName(self, f"Load {what}", "", filters)
        if path:
            edit.setText(path)
            self.changed.emit(p.name, path)

    def value(self, name: str):
        p, w = self.controls[name]
        if p.kind == "bool":
            return w.isChecked()
        if p.kind == "choice":
            return p.choices[w.currentIndex()]
        if p.kind == "path":
            return w.edit.text().strip() or None
        return w.value()

    def values(self) -> dict:
        return {name: self.value(name) for name in self.controls}

    def set_value(self, name: str, value) -> None:
        """Set a control programmatically (tests, restoring); emits ``changed`` like a user edit."""
        p, w = self.controls[name]
        if p.kind == "bool":
            w.setChecked(bool(value))
        elif p.kind == "choice":
            w.setCurrentIndex(list(p.choices).index(value))
        elif p.kind == "path":
            w.edit.setText(str(value or ""))
            self.changed.emit(name, self.value(name))
        else:
            w.setValue(value)
