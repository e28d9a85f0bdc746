"""Output paths are checked before any work starts, so that a long run does not end in an
error about where its results were to go."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable(path) -> str | None:
    """Why path cannot be written as a file ('PATH: is a directory', ...), or None."""
    target = Path(path)
    if target.is_dir():
        return f"{path}: is a directory"
    if not target.parent.is_dir():
        return f"{path}: directory {str(target.parent)!r} does not exist"
    if not os.access(target.parent, os.W_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        return f"{path}: not writable"
    return None
