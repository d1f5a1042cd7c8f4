"""Export trajectory… (the stage stack on screen, or a Compare's, as an animated GIF / MP4) and
the worker's notices (what a slow preparation is doing, e.g. building a CT projector).

A mixin of :class:`._dock.ReconWidget`, placed before the run mixin: it sees every worker item
first, shows :class:`~napari_unrollrecon.engine.notices.Notice` s in the status line and records
a Compare's shown stages (Compare panels keep only final images) before passing frames on. The
rendering and writing are Qt-free (:mod:`napari_unrollrecon.engine.export`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QFileDialog, QPushButton

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon.engine import export
from napari_unrollrecon.engine.notices import Notice

_FILTERS = {"Animated GIF (*.gif)": ".gif", "MP4 video (*.mp4)": ".mp4"}


def stack_panels(title: str, stack, reference=None, with_error: bool = False) -> list[export.Panel]:
    """Panels of a run's :class:`C.StageStack`: the stages, and with ``with_error`` the reference
    before and |error| after them (the side-by-side layout)."""
    n = len(stack)
    frames = np.stack([export.plane(f) for f in stack.buf[:n]])
    scores = [m.get("psnr") for m in stack.metrics]
    panels = [export.Panel(frames, [export.caption(title, s, stack.total, p) for s, p in zip(stack.stages, scores)])]
    if reference is not None:
        ref = export.reference_panel(reference)
        panels[0].limits = ref.limits  # the reference's grey scale, as on the canvas
        if with_error:
            error = np.abs(frames - ref.frames[0])
            panels = [ref, *panels, export.Panel(error, [f"|error| · stage {s}/{stack.total}" for s in stack.stages])]
    return panels


class ExportMixin:
    def _build_export(self) -> None:
        self.export_button = QPushButton("Export trajectory…")
        self.export_button.setToolTip("save the stage stack on screen (with side by side: reference | stages | "
                                      "|error|; after Compare: every method) as an animated GIF or MP4, "
                                      "captions burnt in")
        self.method_box.layout().addWidget(self.export_button)
        self.export_button.clicked.connect(lambda: self.export_trajectory())
        self._recorders: dict[str, export.Recorder] = {}
        self._recorded_for = None  # the CompareState the recorders belong to

    # ------------------------------------------------------------------ worker items (main thread)
    def _on_frame(self, frame) -> None:
        if isinstance(frame, Notice):
            self._say(frame.text)
            return
        self._record_compare(frame)
        super()._on_frame(frame)

    def _record_compare(self, frame) -> None:
        a = self.active
        if not isinstance(frame, C.Frame) or a is None or not a.compare or not frame.show:
            return
        if self._recorded_for is not a:
            self._recorders, self._recorded_for = {}, a
        rec = self._recorders.get(frame.method)
        if rec is None:
            rec = self._recorders[frame.method] = export.Recorder(a.titles.get(frame.method, frame.method),
                                                                  on_grid=False)
        rec.add(frame.update)

    # ------------------------------------------------------------------ export
    def trajectory_panels(self) -> list[export.Panel]:
        """What the export holds: the last Compare's methods (after the reference), else the run
        on screen (side by side: reference | stages | |error|). ValueError when there is none."""
        a = self.active
        if a is not None and a.compare and self._recorded_for is a and self._recorders:
            panels = [rec.panel() for rec in self._recorders.values()]
            if a.reference is not None:
                panels.insert(0, export.reference_panel(a.reference))
                for p in panels[1:]:
                    p.limits = panels[0].limits
            return panels
        view = self.shown
        if view is None or view.stack is None or len(view.stack) == 0:
            raise ValueError("nothing to export yet: run a method (or Compare) first")
        run = a if a is not None and not a.compare and a.view is view else None
        title = run.spec.title if run is not None else view.name
        reference = run.reference if run is not None else None
        return stack_panels(title, view.stack, reference, with_error=self.side_check.isChecked())

    def export_trajectory(self, path=None, fps: float = 4.0) -> Path | None:
        """Write the trajectory to ``path`` (asked for with a file dialog when None); returns the
        file written, or None (cancelled, or a message in the dock says why not)."""
        try:
            panels = self.trajectory_panels()
            path = path or self._ask_trajectory_path()
            if not path:
                return None
            export.check_path(path, self._input_files())
            out = export.write_trajectory(path, panels, fps=fps)
        except (ValueError, OSError) as exc:
            self.report(f"cannot export the trajectory: {exc}")
            return None
        frames = max(len(p.frames) for p in panels)
        self.report(f"✓ trajectory written: {out} ({min(frames, export.MAX_FRAMES)} frames, "
                    f"{len(panels)} panel{'s' * (len(panels) > 1)})", error=False)
        return out

    def _ask_trajectory_path(self) -> str:
        name, chosen = QFileDialog.getSaveFileName(self, "Export trajectory", "trajectory.gif", ";;".join(_FILTERS))
        if name and not Path(name).suffix:
            name += _FILTERS.get(chosen, ".gif")
        return name

    def _input_files(self) -> list:
        """Files the open layers came from: an export never overwrites one."""
        paths = [getattr(getattr(layer, "source", None), "path", None) for layer in self.viewer.layers]
        return [p for p in paths if p]
