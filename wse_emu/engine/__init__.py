"""Engine layer: Numba kernels over the mesh state arrays; knows nothing of text.

Numba's on-disk cache (cache=True) keys each function on its own file only: a cached
`core.run` keeps the old machine code of a changed function in `vector.py`. So before any
kernel is compiled or loaded, each engine module's cache files are dropped when that module
or any engine module it imports (directly or not), or the ISA constants, changed since they
were written. An edit to one file recompiles that file and the files that use it, not the
whole engine: an edit to `bank.py` keeps the cached fabric, scheduler and event kernels."""

import ast
import hashlib
import json
from pathlib import Path

from .. import isa

_HERE = Path(__file__).resolve().parent
_STAMP = "wse_emu_engine.modules"


def _imports(sources: dict[str, bytes]) -> dict[str, set[str]]:
    """Each module's stem -> the modules of `sources` it imports (`from .x`, `from . import
    x`)."""
    graph = {}
    for stem, text in sources.items():
        tree = ast.parse(text)
        graph[stem] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
                graph[stem].update(n for n in names if n in sources)
    return graph


def module_digests(here: Path = _HERE) -> dict[str, str]:
    """Stem -> a digest of the module, every module of `here` it reaches, and the ISA."""
    sources = {f.stem: f.read_bytes() for f in here.glob("*.py")}
    graph = _imports(sources)
    isa_bytes = Path(isa.__file__).read_bytes()
    digests = {}
    for stem in graph:
        reach, todo = set(), [stem]
        while todo:
            m = todo.pop()
            if m not in reach:
                reach.add(m)
                todo.extend(graph[m])
        h = hashlib.sha256(isa_bytes)
        for m in sorted(reach):
            h.update(m.encode() + sources[m])
        digests[stem] = h.hexdigest()
    return digests


def _all_sources_digest() -> str:
    h = hashlib.sha256(Path(isa.__file__).read_bytes())
    for f in sorted(_HERE.glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def cache_dir() -> Path | None:
    """Where Numba keeps this package's cache files (the first locator that applies)."""
    from numba.core.caching import CacheImpl

    for cls in CacheImpl._locator_classes:
        locator = cls.from_function(module_digests, __file__)
        if locator is not None:
            return Path(locator.get_cache_path())
    return None


def _drop_stale_cache():
    try:
        cache = cache_dir()
        if cache is None:
            return
        stamp = cache / _STAMP
        try:
            old = json.loads(stamp.read_text())
        except (OSError, ValueError):
            old = {}
        everything = _all_sources_digest()
        if old.get("*") == everything:  # nothing changed: skip parsing the imports
            return
        digests = module_digests()
        stale = [m for m, d in digests.items() if old.get(m) != d]
        digests["*"] = everything
        cache.mkdir(parents=True, exist_ok=True)
        for m in stale:
            for f in list(cache.glob(f"{m}.*.nbi")) + list(cache.glob(f"{m}.*.nbc")):
                f.unlink()
        stamp.write_text(json.dumps(digests, indent=0, sort_keys=True))
    except (OSError, AttributeError):  # AttributeError: a Numba without CacheImpl
        pass  # read-only install: Numba then caches elsewhere or not at all


_drop_stale_cache()
