"""Engine layer: Numba kernels over the mesh state arrays; knows nothing of text.

Numba's on-disk cache (cache=True) keys each function on its own file only: a cached
`core.run` keeps the old machine code of a changed function in `vector.py`. So before any
kernel is compiled or loaded, drop this package's cache files when any engine source, or
the ISA constants it uses, has changed since they were written."""

import hashlib
from pathlib import Path

from .. import isa

_HERE = Path(__file__).resolve().parent
_STAMP = "wse_emu_engine.sources"


def _sources_digest() -> str:
    files = sorted(_HERE.glob("*.py")) + [Path(isa.__file__)]
    h = hashlib.sha256()
    for f in files:
        if f.exists():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def _drop_stale_cache():
    cache = _HERE / "__pycache__"
    digest = _sources_digest()
    stamp = cache / _STAMP
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink()
        stamp.write_text(digest)
    except OSError:
        pass  # read-only install: Numba then caches elsewhere or not at all


_drop_stale_cache()
