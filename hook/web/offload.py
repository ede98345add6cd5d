"""Offload: CPU work off the gevent event loop, into a real thread, while a request waits.

gunicorn's gevent workers serve every request of a process on one OS thread, so drawing a
picture (tens of milliseconds, seconds for a large PNG) would hold up every other request there,
Camio's POSTs included. gevent's threadpool runs it in a thread of its own (Pillow lets the GIL
go while it decodes and encodes) and only the asking greenlet waits. Outside gevent (tests, a
plain WSGI server) it runs where it is called.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from gevent import get_hub

T = TypeVar("T")


def offload(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in gevent's threadpool when this process serves under gevent, else here."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        return fn(*args)
    return get_hub().threadpool.apply(fn, args)
