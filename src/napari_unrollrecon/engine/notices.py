"""Say what a slow preparation is doing while it runs (e.g. building a CT projector).

:func:`with_notices` runs a function in a helper thread and, inside a worker generator, yields a
:class:`Notice` for every announcement the layers below make meanwhile
(:func:`napari_unrollrecon.physics.notices.announce`), plus one when nothing was said for
``patience`` seconds - so a GUI never shows a bare "starting…" for long::

    prepared = yield from with_notices(prepare)
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from napari_unrollrecon.physics.notices import announce, listening  # noqa: F401 - re-exported

#: Seconds of silence after which a generic "still preparing" notice is yielded.
PATIENCE = 1.0


@dataclass
class Notice:
    """A status message from a worker (not a stage)."""

    text: str


def with_notices(fn, patience: float = PATIENCE, what: str = "preparing the problem"):
    """Generator: run ``fn()`` in a helper thread, yield :class:`Notice` s meanwhile, return its
    value (or raise its exception). Closing the generator leaves the helper to finish on its own."""
    box: queue.Queue = queue.Queue()

    def work():
        try:
            box.put(("done", fn()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the generator's thread
            box.put(("error", exc))

    t0 = time.perf_counter()
    with listening(lambda text: box.put(("notice", text))):
        threading.Thread(target=work, name="unrollrecon-prepare", daemon=True).start()
        said = False
        while True:
            try:
                kind, value = box.get(timeout=patience)
            except queue.Empty:
                if not said:
                    said = True
                    yield Notice(f"{what}… ({time.perf_counter() - t0:.0f} s)")
                continue
            if kind == "notice":
                said = True
                yield Notice(value)
            elif kind == "error":
                raise value
            else:
                return value
