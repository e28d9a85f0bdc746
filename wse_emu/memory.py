"""Memory guard: estimate what a mesh's state will take before allocating it, and refuse
with the numbers instead of dying in NumPy with a MemoryError halfway through a load."""

from __future__ import annotations

import os

from . import isa
from .checks import integer
from .engine import kinds as K


class MeshSizeError(ValueError):
    """The mesh is not a size we can build: not a positive integer, or too big for memory."""


def check_size(width, height) -> tuple[int, int]:
    """(width, height) as ints, or MeshSizeError for anything but positive integers."""
    w = integer(width, "mesh width", 1, None, MeshSizeError, MeshSizeError)
    return w, integer(height, "mesh height", 1, None, MeshSizeError, MeshSizeError)


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo, else the free physical pages (os.sysconf)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def per_pe_bytes(arch, n_insn: int = 0) -> int:
    """Bytes of state per PE that do not depend on the routes: SRAM, scalars, registers,
    DSDs, call stack, per-color queue bookkeeping and route bits (the linker's and the
    engine's copies), links, walk scratch, and the debugger's breakpoint row."""
    colors = arch["colors"]
    fixed = (
        K.NPE * 8
        + isa.N_REGS * 4
        + isa.N_DSDS * 4 * 8
        + isa.CALL_DEPTH * 8
        + 8 * 4  # acc, flops
        + 5 * 8 * 3  # link_free, link_src, link_n
        + 8 * 8  # walk scratch, tready, heap
        + 4  # pe_image
        + 1  # the trace's PE mask
    )
    per_color = 5 * 8 + 4 * isa.SWITCH_POSITIONS * 2 * 2  # queue bookkeeping, rx/tx twice
    return arch["sram_bytes"] + fixed + colors * per_color + max(n_insn, 1)


def check_memory(width: int, height: int, arch, n_insn: int = 0, queue_slots: int = 0):
    """Refuse (MeshSizeError) a state that would not fit in the memory available now.
    queue_slots: the wavelet slots of every input queue (20 bytes each), once known."""
    need = width * height * per_pe_bytes(arch, n_insn) + queue_slots * 20
    have = available_bytes()
    if need > have:
        raise MeshSizeError(
            f"a {width}x{height} mesh needs {_gb(need)} of memory for its state, "
            f"this machine has {_gb(have)} available"
        )


def _gb(n: int) -> str:
    return f"{n / 1e9:.3g} GB"
