"""The dock's own progress bar (issue 13.11): shown for runs longer than a moment, no napari
progress bar (it calls processEvents, running a canvas repaint inside its update)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from napari_unrollrecon._widgets._progress import run_fraction

pytestmark = pytest.mark.gui


def _update(stage, total):
    return SimpleNamespace(stage=stage, total=total)


def test_run_fraction_of_a_run_and_of_a_compare():
    assert run_fraction(SimpleNamespace(last=None)) is None
    assert run_fraction(SimpleNamespace(last=_update(3, 12))) == 0.25
    three = dict(compare=True, titles={"a": 1, "b": 2, "c": 3})
    assert run_fraction(SimpleNamespace(last=_update(5, 10), done=1, **three)) == pytest.approx(0.5)
    # the method that just finished counts in `done`, not again through its last stage
    assert run_fraction(SimpleNamespace(last=_update(10, 10), done=2, **three)) == pytest.approx(2 / 3)


def test_a_long_run_shows_the_docks_bar_and_no_napari_progress(dock, qtbot, phantom):
    from napari.utils import progress

    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    widget.param_form.set_value("steps", 8)
    widget.param_form.set_value("delay", 0.2)
    widget.run()
    qtbot.waitUntil(lambda: widget.run_progress.active() and widget.run_progress.fraction > 0, timeout=5000)
    assert len(progress._all_instances) == 0
    qtbot.waitUntil(widget.settled, timeout=20000)
    assert not widget.run_progress.active()


def test_the_status_line_keeps_its_height_while_held_and_follows_its_text_after(qtbot):
    from qtpy.QtWidgets import QVBoxLayout, QWidget

    from napari_unrollrecon._widgets._progress import StatusLine

    host = QWidget()
    layout = QVBoxLayout(host)
    status = StatusLine("one\ntwo\nthree")
    layout.addWidget(status)
    layout.addStretch(1)
    qtbot.addWidget(host)
    host.resize(300, 400)
    host.show()
    qtbot.waitUntil(lambda: status.height() > 0)
    three = status.height()
    status.hold(True)  # a run streams: a shorter status must not move what is below
    status.setText("one")
    qtbot.wait(50)
    assert status.height() == three
    status.setText("one\ntwo\nthree\nfour")  # a taller one still shows in full
    qtbot.waitUntil(lambda: status.height() > three)
    status.hold(False)
    status.setText("one")
    qtbot.waitUntil(lambda: status.height() < three)
