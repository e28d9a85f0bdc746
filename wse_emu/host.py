"""What a run cost the host machine: wall seconds and the process's peak resident memory,
for `wse-emu run --json`."""

from __future__ import annotations

import sys


def peak_rss_bytes() -> int | None:
    """The process's peak resident set size so far, in bytes; None where the OS does not say."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # Linux: KiB
