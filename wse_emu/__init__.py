"""wse-emu: a functional, cycle-approximate emulator of the Cerebras Wafer-Scale Engine."""

from .arch import ArchProfile
from .asm import AsmError, assemble, parse_file, parse_source
from .runtime import Mesh, RunError, RunResult

__all__ = [
    "AsmError",
    "ArchProfile",
    "Mesh",
    "RunError",
    "RunResult",
    "assemble",
    "parse_file",
    "parse_source",
]
__version__ = "0.1.0"
