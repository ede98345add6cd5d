"""The C heap handed back to the system after a large event.

glibc keeps what Python, numpy and Pillow free in its arenas for reuse, so a worker that once
labeled 64 large frames kept their decoded pixels' worth of pages for good (1.3 GB in
bench/event_memory.py), and a web process what it took in for its largest bodies.
`malloc_trim(0)` returns every whole free page of every arena; it costs a few milliseconds
when there is something to return and well under one when not. Elsewhere (musl, macOS) there
is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, when this process has it."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def give_back() -> bool:
    """Return the C heap's free pages to the system; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
