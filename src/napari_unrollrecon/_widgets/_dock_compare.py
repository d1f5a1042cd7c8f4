"""Side by side, parameter tweaks that re-run, and Compare (several methods on one input).

A mixin of :class:`._dock.ReconWidget`: it uses the widget's controls and state."""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QTableWidgetItem

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets import _view as V
from napari_unrollrecon._widgets._dock_common import _short


class CompareMixin:
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
        single view (panels back at the origin, the camera reset). Showing the |error| layer
        (its eye) turns side by side on: at the origin it would cover the result."""
        a, view = self.active, self.shown
        if view is not None and V._alive(self.viewer, view.err_layer) and view.err_layer.visible \
                and a is not None and not a.compare and not self.side_check.isChecked():
            self.side_check.setChecked(True)  # lays the run out (_side_by_side_changed)
            return
        if self.side_check.isChecked():
            self.occluded.restore()  # panels move the result off the inputs
        if not self.side_check.isChecked() or a is None or a.compare or view is None:
            if self.panels.clear():
                self.viewer.reset_view()
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
            with V.unselected_insert(self.viewer):  # the layer controls stay on the result
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
            self._rerun_soon()  # debounced re-run

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
                missing = C.missing_weights(spec, values, self._modality)
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
        self.occluded.restore()
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
        self.worker = self._new_worker(C.drive_many, jobs, self._prepare_fn(data, settings), reference)
        self._connect(self.worker, "compare")
        self.compare_at.begin(self.active, self.worker)  # records the stages for 'show at stage k'
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
            layer.contrast_limits = self.compare_at.link.held(lim)  # linked panels keep the linked range
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
            n = len(a.titles)
            self.report(f"✓ compared {n} method{'s' * (n != 1)} on '{a.source}': labelled panels on the "
                        "canvas, table below", error=False)

    def _hide_our_layers(self, keep=None, fold_later: bool = False) -> bool:
        """Hide our earlier outputs (never the user's layers, nor those of the ResultView
        ``keep``) so the new ones are not covered, and fold their stage stacks (the slider then
        spans the new run only; ``fold_later``: in a turn of its own, since a slider that
        vanishes resizes and repaints the canvas). Returns whether panels were laid out."""
        kept = {id(V.unwrapped(layer)) for layer in keep.layers()} if keep is not None else set()
        for layer in self._our_layers():
            if id(V.unwrapped(layer)) not in kept and layer.visible:
                layer.visible = False
        if fold_later:
            V.TURNS.add(lambda: self._fold_views(keep))
        else:
            self._fold_views(keep)
        return self.panels.clear()

    def _fold_views(self, keep=None) -> None:
        for view in list(self.views.values()):
            if view is not keep:
                view.fold()

