"""The dock's file chooser: another array or slice of the file the data layer was read from.

Shown only for a data layer our reader opened from a file holding several arrays (a .mat with
several variables, an .npz, an HDF5 file) or slices (a fastMRI k-space volume, of which the reader
takes the middle slice; a 3-D series). It lists the file's arrays (name · shape · dtype, from
the headers: ``engine.io.list_arrays``) and a slice index ("all" where the reader can take the
whole array), and reads the choice with the reader (``_reader.read_layers``, i.e. ``engine.io.read``
with ``key`` / ``slice_index``, as the CLI's ``--key`` / ``--slice``) into a **new** layer: nothing
is overwritten, and a choice already open is selected instead of read twice.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QPushButton, QSpinBox

from napari_unrollrecon._widgets._controller import META_KEY
from napari_unrollrecon._widgets._dock_common import _breakable


def read_from(metadata: dict | None) -> tuple[str, str | None, int | None] | None:
    """(file, key, slice) a layer was read from by our reader, or None."""
    info = (metadata or {}).get(META_KEY, {})
    file = info.get("file")
    return (str(file), info.get("key"), info.get("slice")) if file else None


def has_choices(arrays: list) -> bool:
    """Whether a file offers a choice: several arrays, or one with several slices."""
    return len(arrays) > 1 or any(a.slices > 1 for a in arrays)


class FileChooser(QGroupBox):
    """Array and slice of the data layer's file; *open* reads the choice into a new layer."""

    def __init__(self, parent=None):
        super().__init__("File", parent)
        self.viewer = self.report = None  # set by attach
        self.path: str | None = None
        self.arrays: list = []
        self._listed: dict = {}  # (path, mtime) -> arrays
        form = QFormLayout(self)
        self.file_label = QLabel("")
        self.file_label.setWordWrap(True)
        self.array_combo = QComboBox()
        self.slice_spin = QSpinBox(minimum=-1, maximum=0, specialValueText="all")
        self.slice_spin.setToolTip("which slice / frame of the array to read ('all': the whole array)")
        self.open_button = QPushButton("open as a new layer")
        form.addRow(self.file_label)
        form.addRow("array", self.array_combo)
        form.addRow("slice", self.slice_spin)
        form.addRow(self.open_button)
        self.array_combo.currentIndexChanged.connect(self._array_changed)
        self.open_button.clicked.connect(self.open_choice)
        self.setVisible(False)

    def attach(self, dock) -> None:
        """Read into ``dock``'s viewer and speak in its status line."""
        self.viewer, self.report = dock.viewer, dock.report

    # ------------------------------------------------------------------ following the data layer
    def show_for(self, layer) -> None:
        """Offer the choices of ``layer``'s file (hidden when it has none)."""
        source = read_from(getattr(layer, "metadata", None))
        arrays = self._arrays(source[0]) if source else []
        self.setVisible(has_choices(arrays))
        if self.isHidden():
            self.path, self.arrays = None, []
            return
        path, key, index = source
        if (path, arrays) != (self.path, self.arrays):
            self.path, self.arrays = path, arrays
            self.file_label.setText(_breakable(Path(path).name))
            self.file_label.setToolTip(path)
            self.array_combo.blockSignals(True)
            self.array_combo.clear()
            self.array_combo.addItems([a.describe() for a in arrays])
            self.array_combo.blockSignals(False)
        keys = [a.key for a in arrays]
        self.array_combo.setCurrentIndex(keys.index(key) if key in keys else 0)
        self._array_changed()
        if index is not None and self.slice_spin.isEnabled():
            self.slice_spin.setValue(int(index))

    def _arrays(self, path: str) -> list:
        from napari_unrollrecon.engine import io

        try:
            stamp = (path, Path(path).stat().st_mtime_ns)
            if stamp not in self._listed:
                self._listed = {stamp: io.list_arrays(path)}  # keep one file's listing
            return self._listed[stamp]
        except (OSError, ValueError):  # moved, deleted or unreadable since it was opened
            return []

    def _array_changed(self, *_) -> None:
        a = self.current()
        n = a.slices if a is not None else 0
        self.slice_spin.setEnabled(n > 1)
        self.slice_spin.setRange(-1 if a is None or a.default_slice is None else 0, max(n - 1, 0))
        self.slice_spin.setValue(-1 if a is None or a.default_slice is None else a.default_slice)

    def current(self):
        i = self.array_combo.currentIndex()
        return self.arrays[i] if 0 <= i < len(self.arrays) else None

    def choice(self) -> tuple[str | None, int | None]:
        """(key, slice index or None for all) as chosen."""
        a = self.current()
        index = self.slice_spin.value() if self.slice_spin.isEnabled() else None
        return (a.key if a is not None else None), (None if index is None or index < 0 else index)

    # ------------------------------------------------------------------ reading
    def open_choice(self) -> None:
        """Read the chosen array / slice into a new layer (or select it when already open)."""
        from napari_unrollrecon._reader import read_layers
        from napari_unrollrecon.engine.io import UnusableFileError

        if self.path is None:
            return
        key, index = self.choice()
        for layer in self.viewer.layers:
            if read_from(layer.metadata) == (self.path, key, index if index is not None else
                                              self._default_slice(key)):
                self.viewer.layers.selection.active = layer
                self.report(f"'{layer.name}' holds that choice already (selected)", error=False)
                return
        try:
            layers = read_layers(self.path, key=key, slice_index=index)
        except (UnusableFileError, ValueError, OSError) as exc:
            self.report(str(exc))
            return
        for data, kwargs, _ in layers:
            self.viewer.add_image(data, **kwargs)

    def _default_slice(self, key):
        return next((a.default_slice for a in self.arrays if a.key == key), None)
