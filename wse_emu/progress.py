"""What the CLI shows while the user waits: a note before Numba compiles the engine (the
first run on a machine takes about a minute, silently otherwise), and a status line with
the emulated cycle and PEs halted on runs longer than a moment, on a terminal only."""

from __future__ import annotations

import time

COMPILE_NOTE = (
    "compiling the engine with Numba: once per install (and after an engine change), "
    "about a minute on 2 cores; cached afterwards"
)


def engine_is_cold() -> bool:
    """True when the run loop's machine code is not in Numba's cache yet, so the next run
    compiles the engine. False when unsure (then nothing is said)."""
    try:
        from .engine import cache_dir

        cache = cache_dir()
    except (AttributeError, ImportError, TypeError):
        return False
    return cache is not None and not any(cache.glob("core.run-*.nbi"))


class RunProgress:
    """Callback for Mesh.run(progress=...): after `after` seconds, rewrites one status line
    at most every `every` seconds; close() erases it."""

    def __init__(self, stream, after: float = 1.5, every: float = 0.5):
        self.stream = stream
        self.start = time.monotonic()
        self.after = after
        self.every = every
        self.last = 0.0
        self.width = 0

    def __call__(self, mesh):
        now = time.monotonic()
        if now - self.start < self.after or now - self.last < self.every:
            return
        self.last = now
        from .engine import kinds as K

        pe = mesh.state.pe[: mesh.n_pe]
        placed = int((mesh.program.pe_image >= 0).sum())
        halted = int((pe[:, K.P_STATE] == K.S_HALT).sum())
        line = (
            f"running: cycle {int(pe[:, K.P_CLOCK].max()):,}, {halted}/{placed} PEs halted, "
            f"{now - self.start:.0f} s"
        )
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def close(self):
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
