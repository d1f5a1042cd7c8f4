"""Export trajectory… from the dock (a run, side by side, a Compare) and the worker's notices
(issue 13.6 / 13.8). Runs use the tiny ``dummy-stages`` method (conftest)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unrollrecon.engine import export
from napari_unrollrecon.engine.notices import Notice

pytestmark = pytest.mark.gui


def _run(widget, qtbot, steps=4):
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    widget.param_form.set_value("steps", steps)
    widget.run()
    qtbot.waitUntil(widget.settled, timeout=20000)


def test_export_a_run_as_gif_and_mp4(dock, qtbot, phantom, tmp_path):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    assert widget.export_button.text() == "Export trajectory…"
    assert widget.export_trajectory(tmp_path / "none.gif") is None and "nothing to export" in widget.status.text()
    _run(widget, qtbot, steps=4)
    out = widget.export_trajectory(tmp_path / "run.gif")
    assert out is not None and "✓ trajectory written" in widget.status.text()
    frames = export.read_frames(out)
    assert frames.shape[0] == 4 and frames.shape[2] == export.MIN_WIDTH  # one panel, 64 px × 4
    assert (frames[0, :16] > 200).any()  # caption band
    assert len(export.read_frames(widget.export_trajectory(tmp_path / "run.mp4"))) == 4


def test_export_side_by_side_has_reference_stages_and_error(dock, qtbot, phantom, tmp_path):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.side_check.setChecked(True)
    _run(widget, qtbot, steps=3)
    panels = widget.trajectory_panels()
    assert [p.captions[0].split(" ·")[0] for p in panels] == ["reference", "Dummy stages", "|error|"]
    assert "PSNR" in panels[1].captions[-1] and len(panels[2].frames) == 3
    frames = export.read_frames(widget.export_trajectory(tmp_path / "side.gif"))
    assert frames.shape[0] == 3 and frames.shape[2] == 3 * export.MIN_WIDTH + 2 * 4


def test_export_a_compare_records_every_method(dock, qtbot, phantom, tmp_path, tick):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    tick(widget, ("dummy-stages", "zero-filled"))
    widget.compare()
    qtbot.waitUntil(widget.settled, timeout=20000)
    panels = widget.trajectory_panels()
    assert panels[0].captions == ["reference"] and len(panels) == 3
    assert {p.captions[-1].split(" ·")[0] for p in panels[1:]} == {"Dummy stages", "Zero-filled (Aᴴy)"}
    assert len(export.read_frames(widget.export_trajectory(tmp_path / "cmp.gif"))) >= 2


def test_bad_export_path_is_a_message(dock, qtbot, phantom, tmp_path):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _run(widget, qtbot, steps=2)
    assert widget.export_trajectory(tmp_path / "run.avi") is None
    assert "use a .gif or .mp4 file name" in widget.status.text()
    assert not list(tmp_path.iterdir())


def test_notices_show_in_the_status_line(dock, phantom):
    viewer, widget = dock
    widget._on_frame(Notice("building the CT projector for 180 views at 512² (first use; kept for next time)…"))
    assert widget.status.text().replace("\u200b", "").startswith("building the CT projector for 180 views")
