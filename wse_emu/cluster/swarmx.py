"""SwarmX, the fabric between a host-side weight store (MemoryX) and a cluster of wafers: a
tree of switches that broadcasts weights to every wafer and reduces gradients back, adding
in the switches. The numbers are the [swarmx] section of isa/costs.toml (all assumed).

Model (README "Running on many cores and many machines"): a tree of `fanout`-way switches
over W wafers has L = max(1, ceil(log_fanout W)) levels. A broadcast or reduce of n bytes is
pipelined through the levels, so it costs each level's latency once plus the bytes at one
wafer's bandwidth (`links` x `link_gbit_s`, every level matching it):

    cycles = L * ceil(hop_ns * clock_mhz / 1000)
           + ceil(8 n * clock_mhz / (links * link_gbit_s * 1000))

at the wafer clock (size.clock_mhz)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import isa
from ..arch import ArchError, ArchProfile
from ..checks import integer

RANGES = {
    "link_gbit_s": (1, 10**6),
    "links": (1, 1024),
    "hop_ns": (0, 10**9),
    "fanout": (2, 4096),
    "max_wafers": (1, 10**6),
}


def split_overrides(overrides: dict) -> tuple[dict, dict]:
    """{key: value} of --set into (SwarmX parameters, the wafer's cost-table parameters);
    `swarmx.key` and the bare key both name a SwarmX parameter."""
    fabric, wafer = {}, {}
    for name, value in overrides.items():
        group, _, key = str(name).rpartition(".")
        if group == "swarmx" and key not in RANGES:
            raise ArchError(f"unknown SwarmX parameter {name!r}; one of {', '.join(RANGES)}")
        if key in RANGES and group in ("", "swarmx"):
            fabric[key] = value
        else:
            wafer[name] = value
    return fabric, wafer


@dataclass(frozen=True)
class SwarmX:
    link_gbit_s: int
    links: int
    hop_ns: int
    fanout: int
    max_wafers: int
    clock_mhz: int

    @classmethod
    def load(cls, profile: ArchProfile, overrides: dict | None = None) -> SwarmX:
        """The profile's column of [swarmx], with overrides (bare keys) checked against
        RANGES; the clock is the wafer's, overrides included."""
        table = isa.costs()["swarmx"]
        values = {key: int(row[profile.name]) for key, row in table.items()}
        for key, value in (overrides or {}).items():
            lo, hi = RANGES[key]
            values[key] = integer(value, f"cost parameter {key}", lo, hi, ArchError, ArchError)
        return cls(clock_mhz=profile["clock_mhz"], **values)

    def levels(self, wafers: int) -> int:
        """Switch levels of the smallest fanout-way tree with a leaf per wafer (at least 1:
        even one wafer is fed through a switch)."""
        levels, reach = 1, self.fanout
        while reach < wafers:
            levels, reach = levels + 1, reach * self.fanout
        return levels

    def latency_cycles(self) -> int:
        return -(-self.hop_ns * self.clock_mhz // 1000)

    def transfer_cycles(self, nbytes: int) -> int:
        return -(-8 * nbytes * self.clock_mhz // (self.links * self.link_gbit_s * 1000))

    def cycles(self, nbytes: int, wafers: int) -> int:
        """A broadcast of nbytes to every wafer, or a reduce of nbytes from every wafer."""
        return self.levels(wafers) * self.latency_cycles() + self.transfer_cycles(nbytes)
