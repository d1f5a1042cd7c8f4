"""Memory guard: estimate what a read or a run needs before allocating it, and refuse beyond a limit.

The limit is ``UNROLLRECON_MEMORY_LIMIT`` when set (bytes, or with a K/M/G/T suffix: ``8G``;
``0`` or ``off`` disables the guard), else :data:`FRACTION` of what this process can still get:
the smaller of the system's available memory and the process's address-space limit (``ulimit -v``).
The CLI's ``--memory-limit`` sets the variable. Estimates are deliberately simple (elements × bytes
per element × a working-set factor) and err on the generous side: they exist to turn a size bomb
into a message, not to predict the peak.
"""

from __future__ import annotations

import math
import os

ENV = "UNROLLRECON_MEMORY_LIMIT"
FRACTION = 0.5
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class MemoryLimitError(ValueError):
    """A read or run would need more memory than the limit allows."""


def parse_size(text: str) -> int:
    """``"8G"`` → 8·2³⁰ bytes; ``"0"``/``"off"`` → 0 (no limit)."""
    t = str(text).strip().upper().removesuffix("IB").removesuffix("B") if str(text).strip() else ""
    if t in ("", "0", "OFF", "NONE"):
        return 0
    unit = t[-1] if t[-1] in _UNITS else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"memory limit {text!r} is not a size; use bytes or a number with K, M, G or T (e.g. 8G), "
                         "or 0/off for no limit")
    return int(value * _UNITS[unit])


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def available() -> int:
    """Bytes this process can still allocate: MemAvailable, capped by its address-space limit."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 2**34  # unknown platform: assume 16 GiB
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            avail = min(avail, soft)
    except (ImportError, ValueError, OSError):
        pass
    return int(avail)


def limit() -> tuple[int, str]:
    """(limit in bytes, where it comes from); 0 means no limit."""
    if os.environ.get(ENV, "").strip():
        return parse_size(os.environ[ENV]), f"{ENV}={os.environ[ENV]}"
    return int(FRACTION * available()), f"{FRACTION:.0%} of the memory available"


def array_bytes(shape, bytes_per_element: float) -> int:
    return int(math.prod(int(s) for s in shape) * bytes_per_element)


def check(need: int, what: str) -> None:
    """Raise :class:`MemoryLimitError` when ``need`` bytes exceed the limit; ``what`` names the work."""
    lim, source = limit()
    if lim and need > lim:
        raise MemoryLimitError(
            f"{what} needs about {format_size(need)}, more than the memory limit of {format_size(lim)} "
            f"({source}); use a smaller input (crop or downsample) or raise the limit with {ENV} or --memory-limit")
