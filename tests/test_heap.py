"""The C heap handed back: on glibc (these machines, Debian's) the call is there and works."""

from __future__ import annotations

import subprocess
import sys

from tests.procs import ROOT

# In a fresh interpreter, as a worker's is: what the test process imported before changes how
# glibc places and frees blocks. Freed blocks of a few hundred KB between blocks still in use
# stay with glibc (once one such block was freed, it serves that size from its heap, not mmap)
# until trimmed; the resident size before and after the trim.
SCRIPT = """
import ctypes
from hook import heap
def resident():
    with open("/proc/self/status") as status:
        return int(next(r for r in status if r.startswith("VmRSS:")).split()[1]) // 1024
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
BLOCK = 256 * 1024
libc.free(libc.malloc(BLOCK))
blocks, fences = [], []
for _ in range(800):
    blocks.append(libc.malloc(BLOCK))
    ctypes.memset(blocks[-1], 1, BLOCK)
    fences.append(libc.malloc(64))
for block in blocks:
    libc.free(block)
before = resident()
print(heap.give_back(), before, resident())
"""


def test_free_pages_go_back_to_the_system() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True
    )
    gave, before, after = done.stdout.split()
    assert gave == "True"
    assert int(after) < int(before) - 150, (before, after)  # of the 200 MB freed
