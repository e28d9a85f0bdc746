"""Kernel programs in .wsa assembly; wse_emu.kernels has their host drivers."""

from pathlib import Path

DIR = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """Path of programs/NAME.wsa."""
    p = DIR / f"{name}.wsa"
    if not p.exists():
        raise FileNotFoundError(f"no program {name!r}; have: " + ", ".join(names()))
    return p


def names() -> list[str]:
    """Every shipped program, by name."""
    return sorted(q.stem for q in DIR.glob("*.wsa"))
