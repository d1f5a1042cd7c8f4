"""The dock's display pacer (issue 13.11): refreshes at most 20 a second, spaced out while
refresh + repaint are slow."""

from __future__ import annotations

import time

import pytest

from napari_unrollrecon._widgets._pacer import MAX_WAIT, SPACING, DisplayPacer


def test_interval_follows_the_cost_of_a_refresh():
    pacer = DisplayPacer(20)
    assert pacer.interval() == pytest.approx(0.05)  # nothing measured yet: the maximum rate
    pacer.cost = 0.1
    assert pacer.interval() == pytest.approx(SPACING * 0.1)
    pacer.cost = 10.0
    assert pacer.interval() == MAX_WAIT  # the display still moves


def test_started_measures_up_to_the_next_timer_turn(qtbot):
    pacer = DisplayPacer(20)
    pacer.started()
    assert pacer.wait() > 0.04  # just refreshed: wait
    time.sleep(0.08)  # the refresh (and its repaint) took 80 ms of the event loop
    qtbot.waitUntil(lambda: pacer.cost > 0, timeout=1000)
    assert 0.07 < pacer.cost < 0.5 and pacer.interval() == pytest.approx(SPACING * pacer.cost)
