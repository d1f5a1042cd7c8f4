"""Progress notices from slow steps below the engine (e.g. a CT projector built on first use).

The physics cannot talk to a GUI; it :func:`announce` s what it is about to do, and whoever is
:func:`listening` (the engine's :func:`~napari_unrollrecon.engine.notices.with_notices`, the
CLI) passes it on. Without listeners an announcement costs nothing.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable

_LISTENERS: list[Callable[[str], None]] = []
_LOCK = threading.Lock()


def announce(text: str) -> None:
    """Tell every listener ``text`` (called from whatever thread does the slow step)."""
    with _LOCK:
        listeners = list(_LISTENERS)
    for fn in listeners:
        fn(text)


@contextmanager
def listening(fn: Callable[[str], None]):
    """Call ``fn(text)`` for every announcement made while the block runs."""
    with _LOCK:
        _LISTENERS.append(fn)
    try:
        yield fn
    finally:
        with _LOCK:
            _LISTENERS.remove(fn)
