"""The dock's parts: each builds one section's controls and nothing else (no run logic).

:class:`InputSection` (data layer, kind, modality, reference), :class:`SamplingSection` (mask,
ratio, seed, views, noise, preview), :class:`MethodSection` (method, defaults, device, parameter
form), :class:`RunBar` (Run, Stop, side by side) and :class:`ResultsTabs` (live plot; Compare
list and table). :class:`~._dock.ReconWidget` composes them and wires their signals to the
Qt-free logic of :mod:`._controller`; each part can be built and tested on its own.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets._chooser import FileChooser
from napari_unrollrecon._widgets._compare_stage import CompareAt
from napari_unrollrecon._widgets._params import ParamForm
from napari_unrollrecon._widgets._plot import LivePlot


_TABLE_ROWS = 5  # Compare table rows visible without scrolling


def scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless area that scrolls vertically and never horizontally (the
    widget takes the area's width, so it cannot widen the dock)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    return area


class InputSection(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("Input", parent)
        form = QFormLayout(self)
        self.input_combo = QComboBox()
        self.kind_combo = QComboBox()
        self.kind_combo.addItems(["auto", "image", "k-space", "sinogram"])
        self.modality_combo = QComboBox()
        for key, label in C.MODALITIES.items():
            self.modality_combo.addItem(label, key)
        self.ref_combo = QComboBox()
        self.frames_combo = QComboBox()
        for key, label in C.FRAME_CHOICES.items():
            self.frames_combo.addItem(label, key)
        self.frames_combo.setToolTip("3-D data: which axis holds the frames (files store MATLAB cine data H×W×T; "
                                     "'as read' takes the short last axis as frames)")
        form.addRow("data layer", self.input_combo)
        self.file_chooser = FileChooser()  # shown for a layer read from a file with several arrays / slices
        form.addRow(self.file_chooser)
        form.addRow("frames", self.frames_combo)
        form.addRow("data is", self.kind_combo)
        form.addRow("modality", self.modality_combo)
        form.addRow("reference", self.ref_combo)


class SamplingSection(QGroupBox):
    def __init__(self, mask_kinds, parent=None):
        super().__init__("Sampling", parent)
        self.form = form = QFormLayout(self)
        self.mask_combo = QComboBox()
        self.mask_combo.addItems(list(mask_kinds))
        self.mask_layer_combo = QComboBox()
        self.ratio_spin = QDoubleSpinBox(decimals=3, minimum=0.01, maximum=1.0, singleStep=0.05, value=0.25)
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.views_spin = QSpinBox(minimum=2, maximum=2048, value=60)
        self.noise_spin = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1.0, singleStep=0.01, value=0.0)
        self.noise_spin.setToolTip("complex Gaussian noise, relative to the RMS of the simulated measurements")
        self.preview_check = QCheckBox("show mask layer")
        self.preview_check.setChecked(True)
        self.realised_label = QLabel("")
        self.realised_label.setWordWrap(True)  # a long message wraps instead of widening the dock
        form.addRow("mask", self.mask_combo)
        form.addRow("mask layer", self.mask_layer_combo)
        form.addRow("ratio", self.ratio_spin)
        form.addRow("seed", self.seed_spin)
        form.addRow("views", self.views_spin)
        form.addRow("noise", self.noise_spin)
        form.addRow(self.preview_check, self.realised_label)

    def changed_signals(self):
        """Every signal that means "the sampling changed" (the preview follows them)."""
        return [self.mask_combo.currentIndexChanged, self.mask_layer_combo.currentIndexChanged,
                self.ratio_spin.valueChanged, self.seed_spin.valueChanged, self.views_spin.valueChanged,
                self.noise_spin.valueChanged, self.preview_check.toggled]


class RunBar(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.side_check = QCheckBox("side by side")
        self.side_check.setToolTip("show the run as labelled panels: reference | stages | |error|")
        row.addWidget(self.run_button, 2)
        row.addWidget(self.stop_button, 2)
        row.addWidget(self.side_check, 1)


class MethodSection(QGroupBox):
    """Method choice, device, the info line, the parameter form and the run bar."""

    def __init__(self, parent=None):
        super().__init__("Method", parent)
        v = QVBoxLayout(self)
        row = QHBoxLayout()
        self.method_combo = QComboBox()
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda", "mps"])
        self.defaults_button = QPushButton("defaults")
        self.defaults_button.setToolTip("reset this method's parameters to the defaults for the current modality")
        row.addWidget(self.method_combo, 3)
        row.addWidget(self.defaults_button)
        row.addWidget(QLabel("device"))
        row.addWidget(self.device_combo, 1)
        v.addLayout(row)
        self.method_info = QLabel("")
        self.method_info.setWordWrap(True)
        self.method_info.setStyleSheet("color: #9aa;")
        v.addWidget(self.method_info)
        self.param_form = ParamForm()
        self.param_scroll = scrolling(self.param_form)
        v.addWidget(self.param_scroll)
        self.run_bar = RunBar()
        v.addWidget(self.run_bar)


class ResultsTabs(QTabWidget):
    """The live plot and the Compare tab (method checklist, button, metrics table)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        plot_tab = QWidget()
        pv = QVBoxLayout(plot_tab)
        pv.setContentsMargins(2, 2, 2, 2)
        self.plot = LivePlot()
        pv.addWidget(self.plot)
        self.addTab(plot_tab, "Live plot")
        cmp_tab = QWidget()
        cv = QVBoxLayout(cmp_tab)
        cv.setContentsMargins(2, 2, 2, 2)
        self.compare_list = QListWidget()
        self.compare_list.setMaximumHeight(72)
        self.compare_button = QPushButton("Compare checked methods side by side")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["method", "PSNR dB", "SSIM", "time s"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        rows = self.table.verticalHeader().defaultSectionSize()
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height() + _TABLE_ROWS * rows + 4)
        cv.addWidget(self.compare_list)
        cv.addWidget(self.compare_button)
        self.compare_at = CompareAt()  # show at stage k / elapsed time, link contrast
        cv.addWidget(self.compare_at)
        cv.addWidget(self.table)
        self.addTab(cmp_tab, "Compare")
