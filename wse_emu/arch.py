"""Arch profiles (wse2, wse3): every timing number, read from the sourced cost table
isa/costs.toml, with per-run overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import isa
from .checks import integer

ARCHS = ("wse2", "wse3")


class ArchError(ValueError):
    pass


# Allowed range of every cost-table parameter (inclusive). The engine divides by SIMD widths
# and queue sizes, a zero-cost instruction would let a loop run forever below the cycle
# limit, and every cycle count must stay far from int64 overflow: so overrides are refused
# outside these bounds, with the parameter's name. A SIMD width of 0 means "no such unit"
# (int8 on wse2: the assembler then refuses the ops).
MAX_CYCLES_PARAM = 10**6
SIMD_RANGE = (1, 1024)
RANGES = {
    "int8": (0, 1024),
    "nonlinear_per_element": (0, MAX_CYCLES_PARAM),
    "scalar": (1, MAX_CYCLES_PARAM),
    "wavelet": (1, MAX_CYCLES_PARAM),
    "int_mul": (1, MAX_CYCLES_PARAM),
    "fp_div": (1, MAX_CYCLES_PARAM),
    "load": (1, MAX_CYCLES_PARAM),
    "load_use": (0, MAX_CYCLES_PARAM),
    "dsd_write": (1, MAX_CYCLES_PARAM),
    "async_flag": (0, MAX_CYCLES_PARAM),
    "vector_startup": (0, MAX_CYCLES_PARAM),
    "vector_drain": (0, MAX_CYCLES_PARAM),
    "vector_gap": (0, MAX_CYCLES_PARAM),
    "hop_latency": (0, MAX_CYCLES_PARAM),
    "ramp_on": (0, MAX_CYCLES_PARAM),
    "ramp_off": (0, MAX_CYCLES_PARAM),
    "task_switch": (0, MAX_CYCLES_PARAM),
    "queue_depth": (1, 4096),
    "colors": (1, 24),
    "input_queues": (0, 64),
    "microthreads": (1, 8),  # ids are immediates 0-7 (isa.MAX_MICROTHREADS)
    "output_queues": (0, 64),
    "sram_bytes": (256, 1 << 24),
    "code_bytes_per_insn": (0, 64),
    "lag_window": (1, 1 << 40),
    "clock_mhz": (1, 10**6),
    "banks": (1, 62),  # a step's banks are counted in a 64-bit mask
    "bank_bytes": (1, 64),
    "bank_groups": (1, 62),
    "read_ports": (1, 8),
    "stride_pm1_width": (1, 1024),
    "host_gbps": (1, 10**6),  # Gb/s; 0 would never send
}


def check_override(key: str, value, group: str) -> int:
    """value as an int, or ArchError naming key and its allowed range."""
    lo, hi = RANGES.get(key, SIMD_RANGE if group == "simd" else (0, MAX_CYCLES_PARAM))
    value = integer(value, f"cost parameter {key}", lo, hi, ArchError, ArchError)
    if key == "sram_bytes" and value % 4:
        raise ArchError(f"cost parameter sram_bytes = {value} must be a multiple of 4")
    return int(value)


@dataclass
class ArchProfile:
    name: str
    overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.name not in ARCHS:
            raise ArchError(f"unknown arch {self.name!r}; choose one of {', '.join(ARCHS)}")
        if not isinstance(self.overrides, dict):
            raise ArchError(f"overrides must be a dict of cost parameters, got {self.overrides!r}")
        known = self._flat()
        checked = {}
        for name, value in self.overrides.items():
            # `wse-emu info` prints group.key; the bare key is accepted too
            group, dot, key = name.rpartition(".") if isinstance(name, str) else ("", "", name)
            if key not in known or (dot and group != known[key]["group"]):
                raise ArchError(f"unknown cost parameter {name!r}; see `wse-emu info`")
            checked[key] = check_override(key, value, known[key]["group"])
        self.overrides = checked

    def _flat(self) -> dict[str, dict]:
        table = isa.costs()
        out = {}
        for group in ("simd", "cycles", "size", "bank", "host"):
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

    def rows(self):
        """(group, name, value, source, overridden) for every parameter, for `wse-emu info`."""
        for key, row in self._flat().items():
            yield row["group"], key, self[key], row["source"], key in self.overrides
