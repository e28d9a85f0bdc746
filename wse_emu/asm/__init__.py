"""Assembler layer: parse (Lark) -> resolve/encode -> link onto a mesh."""

from __future__ import annotations

from ..arch import ArchProfile
from .assembler import Image, Symbol, declared_mesh
from .errors import AsmError
from .linker import Linked, link
from .parser import ProgramSet, parse_file, parse_source


def assemble(
    source,
    width: int | None = None,
    height: int | None = None,
    arch="wse3",
    filename="<input>",
    consts: dict | None = None,
) -> Linked:
    """Parse (text or ProgramSet) and link onto a width x height mesh (by default the
    program's .mesh, else 1x1); consts overrides .const values."""
    pset = source if isinstance(source, ProgramSet) else parse_source(source, filename)
    profile = arch if isinstance(arch, ArchProfile) else ArchProfile(arch)
    if width is None or height is None:
        dw, dh = declared_mesh(pset, consts) or (1, 1)
        width = dw if width is None else width
        height = dh if height is None else height
    return link(pset, width, height, profile, consts)


__all__ = [
    "AsmError",
    "Image",
    "Linked",
    "ProgramSet",
    "Symbol",
    "assemble",
    "declared_mesh",
    "link",
    "parse_file",
    "parse_source",
]
