"""Issue 13.9: Compare at a fixed stage (stage k / elapsed seconds / final, from the recorded
stages, no re-run) and linked contrast across the Compare and side-by-side panels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_unrollrecon._widgets._controller import META_KEY

pytestmark = pytest.mark.gui


def _compare(qtbot, widget, methods, **dummy):
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    for name, value in dummy.items():
        widget.param_form.set_value(name, value)
    for i in range(widget.compare_list.count()):
        item = widget.compare_list.item(i)
        keep = item.data(Qt.ItemDataRole.UserRole) in methods
        item.setCheckState(Qt.CheckState.Checked if keep else Qt.CheckState.Unchecked)
    widget.compare()
    assert not widget.compare_at.at_combo.isEnabled()  # nothing recorded to show yet
    qtbot.waitUntil(widget.settled, timeout=30000)
    qtbot.waitUntil(lambda: widget.compare_at.at_combo.isEnabled(), timeout=3000)


def _show_at(widget, mode, value=None):
    at = widget.compare_at
    at.at_combo.setCurrentIndex(at.at_combo.findData(mode))
    if value is not None:
        (at.stage_spin if mode == "stage" else at.time_spin).setValue(value)


def _row(widget, title):
    for r in range(widget.table.rowCount()):
        if widget.table.item(r, 0).text().startswith(title):
            return [widget.table.item(r, c).text() for c in range(widget.table.columnCount())]
    raise AssertionError(f"no row for {title}")


def test_compare_at_stage_k_relays_panels_and_table_without_rerunning(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _compare(qtbot, widget, ("dummy-stages", "zero-filled"), steps=5)
    dummy, zf = widget.compare_layers["dummy-stages"], widget.compare_layers["zero-filled"]
    final, final_row = dummy.data.copy(), _row(widget, "Dummy stages")
    labels = widget.panels.captions()
    _show_at(widget, "stage", 2)
    assert widget.worker is None  # re-laid from the records
    np.testing.assert_allclose(dummy.data, final * 2 / 5, rtol=1e-5, atol=1e-6)  # stage k = (k/steps)·|Aᴴy|
    row = _row(widget, "Dummy stages")
    rec = widget.compare_at.runs["dummy-stages"].at("stage", 2)
    assert row[0].endswith("@ 2/5") and row[1] == f"{rec.metrics['psnr']:.2f}" and row[1] != final_row[1]
    assert any(t.startswith("Dummy stages @ 2/5") and row[1] in t for t in widget.panels.captions())
    assert _row(widget, "Zero-filled")[0].endswith("@ 1/1")  # a one-stage method shows its final stage
    assert "stage ≤ 2" in widget.status.text()
    _show_at(widget, "final")
    np.testing.assert_array_equal(dummy.data, final)
    assert _row(widget, "Dummy stages") == final_row and widget.panels.captions() == labels
    assert zf.visible and dummy.visible


def test_compare_at_equal_elapsed_time(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _compare(qtbot, widget, ("dummy-stages",), steps=6, delay=0.15)
    run = widget.compare_at.runs["dummy-stages"]
    # just after stage 3 arrived, on the time box's 0.1 s grid (stages arrive ≥ 0.15 s apart)
    t = math.ceil(run.snaps[2].elapsed * 10 - 1e-9) / 10
    _show_at(widget, "time", t)
    assert widget.compare_at.time_spin.value() == pytest.approx(t)
    snap = run.at("time", t)
    assert snap.stage == 3 and snap.elapsed <= t
    assert _row(widget, "Dummy stages")[3] == f"{snap.elapsed:.2f}"
    assert "within" in widget.status.text()
    _show_at(widget, "time", 0.0)  # before the first stage arrived: the first, and it says so
    assert _row(widget, "Dummy stages")[0].endswith("@ 1/6 (first kept)")


def test_linked_contrast_across_compare_panels(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _compare(qtbot, widget, ("dummy-stages", "zero-filled"))
    panels = widget.panels.layers
    assert len(panels) == 3
    panels[1].contrast_limits = (0.0, 0.25)  # unlinked: the others keep theirs
    assert not np.allclose(panels[0].contrast_limits, panels[1].contrast_limits)
    widget.compare_at.link_check.setChecked(True)
    first = [tuple(p.contrast_limits) for p in panels]
    assert len(set(first)) == 1 and first[0][1] >= 0.25  # the union of their ranges
    panels[2].contrast_limits = (0.1, 0.5)  # the user changes one: all follow
    assert all(np.allclose(p.contrast_limits, (0.1, 0.5)) for p in panels)
    _show_at(widget, "stage", 1)  # re-laying keeps them linked
    assert all(np.allclose(p.contrast_limits, (0.1, 0.5)) for p in widget.panels.layers)
    widget.compare_at.link_check.setChecked(False)
    panels[0].contrast_limits = (0.0, 0.9)
    assert np.allclose(panels[1].contrast_limits, (0.1, 0.5))


def test_linked_contrast_in_side_by_side_leaves_the_error_map_alone(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    widget.side_check.setChecked(True)
    widget.compare_at.link_check.setChecked(True)
    widget.run()
    qtbot.waitUntil(widget.settled, timeout=20000)
    kinds = {p.metadata[META_KEY]["kind"]: p for p in widget.panels.layers}
    assert set(kinds) == {"reference", "reconstruction", "error"}
    err_limits = tuple(kinds["error"].contrast_limits)
    kinds["reconstruction"].contrast_limits = (0.05, 0.4)
    assert np.allclose(kinds["reference"].contrast_limits, (0.05, 0.4))
    assert tuple(kinds["error"].contrast_limits) == err_limits  # another quantity: its own range


def test_a_notice_while_a_compare_builds_its_problem_is_not_a_stage(dock, qtbot, phantom):
    """A slow problem build (a CT projector at 512²) makes the worker yield Notices before any
    stage; the stage recorder crashed on them ('Notice' object has no attribute 'show')."""
    from napari_unrollrecon.engine.notices import Notice

    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _compare(qtbot, widget, ("dummy-stages", "zero-filled"), steps=3)
    before = {m: len(t) for m, t in widget.compare_at.runs.items()}
    widget.compare_at.record(Notice("building the CT projector…"))
    assert {m: len(t) for m, t in widget.compare_at.runs.items()} == before
