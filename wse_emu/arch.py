"""Arch profiles (wse2, wse3): every timing number, read from the sourced cost table
isa/costs.toml, with per-run overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import isa

ARCHS = ("wse2", "wse3")


class ArchError(ValueError):
    pass


@dataclass
class ArchProfile:
    name: str
    overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.name not in ARCHS:
            raise ArchError(f"unknown arch {self.name!r}; choose one of {', '.join(ARCHS)}")
        known = set(self._flat())
        for key in self.overrides:
            if key not in known:
                raise ArchError(f"unknown cost parameter {key!r}; see `wse-emu info`")

    def _flat(self) -> dict[str, dict]:
        table = isa.costs()
        out = {}
        for group in ("simd", "cycles", "size"):
            for key, row in table[group].items():
                out[key] = dict(row, group=group)
        return out

    def __getitem__(self, key: str) -> int:
        if key in self.overrides:
            return int(self.overrides[key])
        return int(self._flat()[key][self.name])

    def simd_width(self, cost_class: str) -> int:
        return self[cost_class]

    @property
    def clock_hz(self) -> float:
        return self["clock_mhz"] * 1e6

    @property
    def stride_widths(self) -> list[int]:
        return list(isa.costs()["stride"]["width_by_mod8"])

    def rows(self):
        """(group, name, value, source, overridden) for every parameter, for `wse-emu info`."""
        for key, row in self._flat().items():
            yield row["group"], key, self[key], row["source"], key in self.overrides
