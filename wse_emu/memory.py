"""Memory guard: estimate what a mesh's state will take before allocating it, and refuse
with the numbers instead of dying in NumPy with a MemoryError halfway through a load."""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import numpy as np

from . import isa
from .checks import integer
from .engine import kinds as K
from .engine.state import VIEW_FIELDS, new_state


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


# bytes per wavelet slot of an input-queue ring: payload (uint32), arrival time and the
# cycle the slot was last freed (int64 each), control flag (uint8)
QUEUE_SLOT_BYTES = 4 + 8 + 8 + 1


def sram_footprint(images) -> int:
    """SRAM bytes allocated per PE: the end of the data the images declare (symbols and their
    initial values), the largest over the images, rounded up to a whole 32-bit word. A PE
    touches no more unless it computes an address past its symbols, which the engine
    reports as an access to undeclared memory (kinds.F_SRAM_UNDECLARED); the real SRAM's
    other bytes hold no data of the program (its code is kept apart), so they are not
    allocated."""
    end = max((im.data_bytes for im in images), default=0)
    return (end + 3) & ~3


def per_pe_bytes(arch, n_insn: int = 0, sram_row: int = 0) -> int:
    """Bytes of state per PE that do not depend on the routes: what engine/state.py allocates
    for one more PE (measured on a two-PE state, so it cannot drift from it: SRAM of
    sram_row bytes, none before a program is known; scalars, registers, DSDs, per-color
    queue bookkeeping and routes, links, the breakpoint row of n_insn bytes), plus the
    linker's copy of the routes and its image map."""
    colors = arch["colors"]
    linker = 2 * colors * isa.SWITCH_POSITIONS + 4  # Linked.rx, .tx and .pe_image
    one = _state_bytes(colors, 1, 0, n_insn, sram_row)
    return _state_bytes(colors, 2, 0, n_insn, sram_row) - one + linker


def microthread_bytes(arch) -> int:
    """Bytes of state per microthread row (engine/microthread.py)."""
    colors = arch["colors"]
    return _state_bytes(colors, 1, 1, 0, 0) - _state_bytes(colors, 1, 0, 0, 0)


@functools.lru_cache(maxsize=64)
def _state_bytes(colors, n_pe, n_ut, n_insn, sram_row, n_img=1) -> int:
    rx = np.zeros((n_pe, colors, isa.SWITCH_POSITIONS), np.uint8)
    code = np.zeros((max(n_insn, 1), K.NCODE), np.int32)
    cfg = np.zeros(K.NCFG, np.int64)
    S = new_state(
        code, n_pe, n_img, cfg, rx, rx, np.zeros(n_pe * colors, np.int64), sram_row, colors, n_ut
    )
    return sum(a.nbytes for f, a in zip(S._fields, S) if f not in VIEW_FIELDS)


class Footprint(NamedTuple):
    """What a loaded program makes the state hold besides its fixed per-PE part."""

    n_insn: int = 0  # instructions of all images (the breakpoint row)
    queue_slots: int = 0  # wavelet slots of every input-queue ring
    sram_row: int = 0  # SRAM bytes per PE (sram_footprint); none before a program is known
    microthreads: int = 0  # microthread rows
    images: int = 1  # task tables are per image


def check_memory(width: int, height: int, arch, use: Footprint = Footprint()):
    """Refuse (MeshSizeError) a state that would not fit in the memory available now."""
    need = state_bytes(width * height, arch, use)
    have = available_bytes()
    if need > have:
        raise MeshSizeError(
            f"a {width}x{height} mesh needs {_gb(need)} of memory for its state, "
            f"this machine has {_gb(have)} available"
        )


def state_bytes(n_pe: int, arch, use: Footprint = Footprint()) -> int:
    """What a mesh of n_pe PEs takes, with the arrays that do not grow with the mesh (code,
    decode tables, task tables) and the linker's route tables."""
    colors = arch["colors"]
    one, two = (_state_bytes(colors, n, 0, use.n_insn, use.sram_row) for n in (1, 2))
    per_image = _state_bytes(colors, 1, 0, 0, 0, 2) - _state_bytes(colors, 1, 0, 0, 0)
    return (
        2 * one
        - two
        + n_pe * per_pe_bytes(arch, use.n_insn, use.sram_row)
        + use.queue_slots * QUEUE_SLOT_BYTES
        + use.microthreads * microthread_bytes(arch)
        + max(use.images - 1, 0) * per_image
    )


def breakdown(n_pe: int, arch, use: Footprint = Footprint()) -> dict[str, int]:
    """state_bytes(n_pe, arch, use) by what it is for, each part the difference it makes to
    what engine/state.py allocates (so the parts add up to the total): the fixed per-PE
    state, SRAM rows, breakpoint rows, queue rings, microthread rows, and what is shared
    (code, decode and task tables)."""
    fixed = per_pe_bytes(arch)
    parts = {
        "per-PE state (registers, DSDs, queues, routes, links)": n_pe * fixed,
        "SRAM (declared data)": n_pe * (per_pe_bytes(arch, 0, use.sram_row) - fixed),
        "breakpoint rows (one byte per instruction)": n_pe
        * (per_pe_bytes(arch, use.n_insn, 0) - fixed),
        "input-queue rings": use.queue_slots * QUEUE_SLOT_BYTES,
        "microthread rows": use.microthreads * microthread_bytes(arch),
    }
    parts["shared (code, task tables)"] = state_bytes(n_pe, arch, use) - sum(parts.values())
    return parts


def _gb(n: int) -> str:
    return f"{n / 1e9:.3g} GB"
