"""Assembler layer: parse (Lark) -> resolve/encode -> link onto a mesh."""

from __future__ import annotations

from ..arch import ArchProfile
from .assembler import Image, Symbol
from .errors import AsmError
from .linker import Linked, link
from .parser import ProgramSet, parse_file, parse_source


def assemble(
    source,
    width: int = 1,
    height: int = 1,
    arch="wse3",
    filename="<input>",
    consts: dict | None = None,
) -> Linked:
    """Parse (text or ProgramSet) and link onto a width x height mesh; consts overrides
    .const values."""
    pset = source if isinstance(source, ProgramSet) else parse_source(source, filename)
    profile = arch if isinstance(arch, ArchProfile) else ArchProfile(arch)
    return link(pset, width, height, profile, consts)


__all__ = [
    "AsmError",
    "Image",
    "Linked",
    "ProgramSet",
    "Symbol",
    "assemble",
    "link",
    "parse_file",
    "parse_source",
]
