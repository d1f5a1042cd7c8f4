"""The dock reacting to its settings: layers, modality, method, parameter form, gathering a
run's input, the mask preview.

A mixin of :class:`._dock.ReconWidget`: it uses the widget's controls and state."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QListWidgetItem

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets._view import unselected_insert
from napari_unrollrecon._widgets._dock_common import (
    _NONE,
    _AUTO_REF,
    _KIND_CHOICES,
    _FORM_MIN_HEIGHT,
    _FORM_MAX_HEIGHT,
    _GLYPHS,
    _notify,
    _short,
    _breakable,
    _EmptySpec,
)


class InputsMixin:
    # ================================================================== reacting to settings
    def _input_changed(self, *_) -> None:
        layer = self._layer(self.input_combo.currentText())
        self.file_chooser.show_for(layer)  # the file's other arrays / slices, if it has any
        if layer is not None:
            kind = self._kind(layer)
            modality = C.guess_modality(kind, np.ndim(layer.data) - (1 if layer.rgb else 0), layer.metadata)
            hint = C.ct_hint(layer.metadata) if modality == "ct" and kind == "image" else ""
            if hint and modality != self._current_modality():
                self._say(f"'{layer.name}': modality set to CT because {hint}; change it under 'modality' if wrong")
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
        self._show_rows_for(modality)
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

    def _show_rows_for(self, modality: str) -> None:
        """Only the controls that act in ``modality``: mask rows for MRI, views for CT, the frame
        axis for dynamic MRI."""
        ct = modality == "ct"
        for w in (self.mask_combo, self.mask_layer_combo, self.ratio_spin, self.seed_spin):
            self.sampling_form.setRowVisible(w, not ct)
        self.sampling_form.setRowVisible(self.views_spin, ct)
        self.preview_check.setVisible(not ct)
        self.input_box.layout().setRowVisible(self.frames_combo, modality == "dmri")

    @staticmethod
    def _registered() -> tuple:
        from napari_unrollrecon.engine import registry

        return tuple(registry.names())

    def _sampling_changed(self, *_) -> None:
        self._preview_soon()

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
        hints = {p.name: C.path_hint(spec, p, self._modality) for p in spec.params if p.kind == "path"}
        self.param_form.build(spec, self.edits.values(spec, self._modality), hints, modality=self._modality)
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
            missing = C.missing_weights(spec, values, self._modality)
            named = []
            for p in (p for p in spec.params if p.kind == "path"):
                bundled = C.bundled_weights(spec, self._modality, p)
                named.append(values.get(p.name) or C.bundled_text(bundled))
            info += "\n" + (missing or ("weights: " + " + ".join(n for n in named if n) if any(named) else ""))
        notes = []
        if any(p.live for p in spec.params):
            notes.append("● = can change while it runs")
        if any(p.by_modality for p in spec.params):
            notes.append(f"defaults for {C.MODALITIES.get(self._modality, self._modality)}")
        if notes:
            info += "\n" + " · ".join(notes)
        self.method_info.setText(_breakable(info.strip()))

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
            mask_layer=getattr(self._layer(self.mask_layer_combo.currentText()), "name", ""),
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
        mask = None if settings.modality == "ct" else C.make_mask(settings, data.shape, *self._mask_source())[0]
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

    def _mask_source(self) -> tuple:
        """(the mask layer's array as stored, its name), or (None, "") for a generated mask: the
        stored array goes to the engine, which detects its layout exactly like a mask file's."""
        layer = self._layer(self.mask_layer_combo.currentText())
        return (None, "") if layer is None else (np.asarray(layer.data), f"mask layer '{_short(layer.name)}'")

    def _prepare_fn(self, data, settings):
        mask, name = self._mask_source()

        def prepare():  # the engine makes or reads the mask exactly as the CLI does
            return C.build_problem(data, settings, mask, name or "mask layer")

        return prepare

    def _values(self, spec) -> dict:
        values = C.coerce_params(spec, self.param_form.values())
        missing = C.missing_weights(spec, values, self._current_modality())
        if missing:
            raise C.InputError(missing)
        return values

    # ================================================================== messages
    def report(self, message: str, error: bool = True) -> None:
        colour = "#ff8a80" if error else "#c5e1a5"
        self.status.setStyleSheet(f"color: {colour};")
        self.status.setText(_breakable(message))
        if error:
            _notify(message)

    def _say(self, message: str) -> None:
        if self.status.styleSheet():
            self.status.setStyleSheet("")
        self.status.setText(_breakable(message))

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
            mask, desc = C.make_mask(settings, shape, *self._mask_source())
        except (ValueError, ImportError) as exc:
            self.realised_label.setText(_breakable(f"mask: {exc}"))
            return
        ratio = float(np.mean(mask != 0))
        self.realised_label.setText(f"realised ratio {ratio:.3f} (acceleration ×{1 / max(ratio, 1e-9):.1f})"
                                    + C.layout_text(desc))
        preview = self._layer(self.mask_preview_name)
        if not self.preview_check.isChecked():
            if preview is not None:
                preview.visible = False
            return
        if preview is None:
            with unselected_insert(self.viewer):  # a helper: the layer controls stay where they are
                self.viewer.add_image(mask, name=self.mask_preview_name, colormap="cyan", blending="additive",
                                      opacity=0.5, contrast_limits=(0, 1),
                                      metadata={C.META_KEY: {"kind": "mask-preview"}})
        else:
            if preview.data.shape != mask.shape or not np.array_equal(preview.data, mask):
                preview.data = mask
            preview.visible = True

