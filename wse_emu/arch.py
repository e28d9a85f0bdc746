"""Arch profiles (wse2, wse3): every timing number, read from the sourced cost table
isa/costs.toml, with per-run overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import isa

ARCHS = ("wse2", "wse3")


class ArchError(ValueError):
    pass


# (lowest, highest) value of each number the engine divides by, indexes with or sizes with
_RANGES = {
    "hop_latency": (0, 1 << 20),
    "ramp_on": (0, 1 << 20),
    "ramp_off": (0, 1 << 20),
    "queue_depth": (1, 1 << 16),
    "lag_window": (1, 1 << 40),
    "task_switch": (0, 1 << 20),
    "vector_startup": (0, 1 << 20),
    "colors": (1, 256),
    "sram_bytes": (4, 1 << 30),
    "scalar": (0, 1 << 20),
    "wavelet": (0, 1 << 20),
    "nonlinear_per_element": (0, 1 << 20),
    "code_bytes_per_insn": (0, 1 << 20),
}


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
        self._check_ranges()

    def _check_ranges(self):
        """The engine indexes, takes remainders and sizes queue rings with these numbers
        unchecked, so an override it cannot run with is refused here, by name."""
        for key, (lo, hi) in _RANGES.items():
            if not lo <= self[key] <= hi:
                raise ArchError(f"cost parameter {key} = {self[key]} is outside {lo}-{hi}")
        if self["sram_bytes"] % 4:
            raise ArchError(
                f"cost parameter sram_bytes = {self['sram_bytes']} is not a multiple of 4"
            )
        for key in isa.costs()["simd"]:  # 0: the arch lacks that SIMD class
            if not 0 <= self[key] <= 1 << 16:
                raise ArchError(f"cost parameter {key} = {self[key]} is outside 0-65536")

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
