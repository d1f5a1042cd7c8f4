"""Running one method: the worker, its frames, captions, progress, the outcome and re-runs.

A mixin of :class:`._dock.ReconWidget`: it uses the widget's controls and state."""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtCore import QTimer

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets import _view as V
from napari_unrollrecon._widgets._dock_common import _PBAR_DELAY_MS, _INFO_SHOWN, _short
from napari_unrollrecon._widgets._progress import TICK_MS as _PBAR_TICK_MS, run_fraction
from napari_unrollrecon._widgets._worker_nice import niced, worker_nice


class RunMixin:
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
        self._start(spec, self._prepare_fn(data, settings), values, reference, source=layer.name,
                    settings=settings, mask=mask, shape=shape, ref_name=self._reference_name())

    def _start(self, spec, prepare, values, reference, source, settings, shape, ref_name="", mask=None,
               cache=None, start=0) -> None:
        """Start the worker first (it builds the problem and computes stage 1 meanwhile), then
        prepare the layers (reused after a method's first run). A method's first run creates its
        layer before the worker starts: napari builds a layer in ~0.1 s of Python (shader
        parsing, layer controls) that took 3-5× longer while the worker competed for the GIL, and
        starts the worker a turn later (``V.TURNS``), after the layer's first draw."""
        self.worker = self._new_worker(C.drive, spec, prepare, values, reference, cache, start)
        self._connect(self.worker, spec.title)
        t0 = time.perf_counter()
        self.active = C.RunState(spec=spec, values=dict(values), key=self._input_key(), reference=reference,
                                 source=source, settings=settings, mask=mask, start=start, t0=t0, prepare=prepare,
                                 shape=tuple(shape), ref_name=ref_name,
                                 limits_key=(source, ref_name, tuple(shape), settings.kind))
        view = self.views.get(spec.name)
        if view is None or not (view.usable_for(shape) or view.layer is None):
            view = self.views[spec.name] = V.ResultView(self.viewer, spec.name)
        creates = not view.usable_for(shape)
        if not creates:
            self.worker.start()
        self._running_ui(True)
        self.plot.clear()
        meta = {"method": spec.name, "title": spec.title, "params": dict(values), "source": source,
                "mask": mask, "settings": vars(settings).copy()}
        # a new layer is built hidden and takes the previous result's place at the first stage, in
        # one turn: the stage slider stays on screen (no canvas resize) and the layer's build and
        # first draw fall in two event-loop turns instead of one
        self.active.swap = creates and not self.side_check.isChecked() and not self.panels.layers
        laid_out = False if self.active.swap else self._hide_our_layers(keep=view)
        view.begin(shape, reference, meta, start=start, hidden=self.active.swap)
        if creates:  # the new layer's first draw gets a turn of its own before the worker
            # competes for the GIL
            V.TURNS.add(lambda w=self.worker: self._start_worker(w))
        view.on_new_extra = view.on_error_shown = self._arrange_run
        view.held = self.job.held
        self.active.view = self.shown = view
        self._arrange_run()
        if laid_out and not self.panels.layers:  # back from side by side or Compare: one view again
            self.viewer.reset_view()
        if view.layer is not None and not self.active.swap \
                and self.viewer.layers.selection.active is not view.layer:
            self.viewer.layers.selection.active = view.layer  # its controls, not a helper layer's
        self._say(f"{spec.title}: starting on '{source}' ({settings.describe()})…")

    def _start_worker(self, worker) -> None:
        """Start a worker whose start was put off (a stop pressed meanwhile ends it at once)."""
        if self.worker is worker:
            worker.start()

    def _new_worker(self, fn, *args):
        """An unstarted worker running ``fn(*args)`` through a releasable :class:`C.Job`."""
        from napari.qt.threading import create_worker

        self.job = C.Job(fn, *args)
        return create_worker(niced(self.job.run, worker_nice()), _start_thread=False)  # repaints go first

    def settled(self) -> bool:
        """No run going and no layer of the last one still to be built (tests, scripts)."""
        return self.worker is None and not V.TURNS.pending()  # layer builds are queued turns too

    def _running_ui(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.compare_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.status.hold(running)  # a status of changing line count would re-lay out the dock per frame
        if running:
            self._pbar_timer.start(_PBAR_DELAY_MS)
        else:
            self._pbar_timer.stop()
        if running != self._gc_held:  # no full GC sweep while a run streams (C.QuietGC)
            self._gc_held = running
            (C.QUIET_GC.hold if running else C.QUIET_GC.release)()

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
        """Refresh the display now, or once the pacer's interval since the last refresh has passed
        (1/MAX_RATE s, longer while repaints are slow; stages keep filling the stack meanwhile)."""
        wait = self.pacer.wait()
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
        self.pacer.started()
        a = self.active
        if a is None or a.compare or a.shown is None:
            return
        if a.swap:  # the new layer's first stage: it replaces the previous result now (shown
            a.swap = False  # first, then the others hidden and, a turn later, folded)
            a.view.layer.visible = True
            self._hide_our_layers(keep=a.view, fold_later=True)
            a.view.select_later()  # its layer controls, in a turn of their own
        a.view.refresh(a.limits_key, a.reference)
        if self.worker is not None and not self.panels.layers:
            a.occluded = a.occluded or tuple(self.occluded.hide_under(a.view.layer))
        self._caption()
        self._say(self._progress_text(a.spec, a.shown) + self._occluded_text(a))

    @staticmethod
    def _occluded_text(a) -> str:
        if not a.occluded:
            return ""
        names = ", ".join(f"'{_short(n, 20)}'" for n in a.occluded)
        return f"\n(hidden under the result while it runs, for smoother drawing: {names})"

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
            self.shown.follow_slider()

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
        note = (u.info or {}).get("note")  # what the method assumes (a real-valued network on complex data)
        return text + f" · {u.elapsed:.1f} s" + (f"\n⚠ {note}" if note else "")

    def _progress_tick(self) -> None:
        """The dock's progress bar (:class:`._progress.RunProgress`), shown for runs still going
        after a moment and updated from its own timer tick; napari's progress bar is not used:
        it calls processEvents, which ran a whole canvas repaint inside its update."""
        if self.worker is None or self.active is None:
            self._pbar_timer.stop()
            return
        if self._pbar_timer.interval() != _PBAR_TICK_MS:
            self._pbar_timer.setInterval(_PBAR_TICK_MS)
        self.run_progress.show_fraction(run_fraction(self.active))

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
            if self.side_check.isChecked():
                view.ensure_error_layer(visible=True)
            else:  # hidden, for the user to tick: built in a later turn, not in the last stage's
                view.ensure_error_layer_later()
        stages = f"{result.stages} stage{'s' * (result.stages != 1)}"
        text = f"✓ {a.spec.title} on '{a.source}': {stages} in {result.seconds:.2f} s"
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
        self.occluded.restore()
        self.run_progress.finish()
        self.worker = None
        if self.job is not None:
            self.job.release()
            self.job = None
        self._running_ui(False)
        a = self.active or {}
        view = a.view
        if view is not None and not a.compare and view.discard_if_empty():
            self.views.pop(a.spec.name, None)  # its layer was made for a run that produced nothing
            self.shown = None
        if self.pending_rerun:
            self.pending_rerun = False
            self.rerun_after_tweak()

