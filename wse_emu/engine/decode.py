"""Turn the binary encoding (isa/instructions.toml) into engine code words for one arch:
semantics codes, SIMD width and cycles per element from the cost table."""

import numpy as np

from .. import isa
from ..arch import ArchError, ArchProfile
from . import kinds as K

_SEM = {name: i for i, name in enumerate(K.SEM_NAMES)}
_FN = {name: i for i, name in enumerate(K.FN_NAMES)}


def _check_table():
    for row in isa.table():
        if row.sem not in _SEM:
            raise ValueError(f"{row.mnemonic}: engine has no semantics group {row.sem!r}")
        if row.fn not in _FN:
            raise ValueError(f"{row.mnemonic}: engine has no function {row.fn!r}")


_check_table()

# cost classes charged per instruction (cycles from the cost table), not per element
SCALAR_CLASSES = ("scalar", "wavelet", "int_mul", "fp_div", "load", "dsd_write", "async_flag")


def cost_of(row: isa.Insn, dtype: str | None, arch: ArchProfile) -> tuple[int, int]:
    """(SIMD width, cycles per element) of a vector op, or (0, cycles) of a scalar op."""
    cls = row.cost_class(dtype)
    if cls in SCALAR_CLASSES:
        return 0, arch[cls]
    per_element = arch["nonlinear_per_element"] if cls == "nonlinear" else 1
    return arch.simd_width(cls), per_element


def decode(binary: np.ndarray, arch: ArchProfile) -> np.ndarray:
    table = isa.table()
    out = np.zeros((len(binary), K.NCODE), np.int32)
    for i, word in enumerate(binary):
        row = table[word[0]]
        dtype = isa.DTYPES[word[1]] if (row.dtypes or row.fixed) else None
        width, cpe = cost_of(row, dtype, arch)
        if width <= 0 and row.cost_class(dtype) not in SCALAR_CLASSES:
            raise ArchError(  # a vector op divides its length by this width
                f"{row.mnemonic}.{dtype} needs {row.cost_class(dtype)} SIMD, "
                f"which {arch.name} does not have"
            )
        out[i, K.C_SEM] = _SEM[row.sem]
        out[i, K.C_FN] = _FN[row.fn]
        out[i, K.C_DT] = word[1]
        out[i, K.C_DT2] = word[2]
        out[i, K.C_MASK] = word[3]
        out[i, K.C_F0 : K.C_F0 + isa.N_FIELDS] = word[4 : 4 + isa.N_FIELDS]
        out[i, K.C_WIDTH] = width
        out[i, K.C_CPE] = cpe
        out[i, K.C_FLOPS] = row.flops
    return out


def engine_config(
    arch: ArchProfile, width: int, height: int, sram_row=None, microthreads=None
) -> np.ndarray:
    """sram_row: the SRAM bytes allocated per PE (the declared data; default all of it);
    microthreads: the rows a PE that uses them has (the ids its program names; default all
    the arch has)."""
    cfg = np.zeros(K.NCFG, np.int64)
    cfg[K.CFG_HOP] = arch["hop_latency"]
    cfg[K.CFG_RAMP_ON] = arch["ramp_on"]
    cfg[K.CFG_RAMP_OFF] = arch["ramp_off"]
    cfg[K.CFG_QDEPTH] = arch["queue_depth"]
    cfg[K.CFG_LAG] = arch["lag_window"]
    cfg[K.CFG_TASK_SWITCH] = arch["task_switch"]
    cfg[K.CFG_STARTUP] = arch["vector_startup"]
    cfg[K.CFG_DRAIN] = arch["vector_drain"]
    cfg[K.CFG_GAP] = arch["vector_gap"]
    cfg[K.CFG_LOAD_USE] = arch["load_use"]
    cfg[K.CFG_ISSUE] = arch["scalar"]
    cfg[K.CFG_NCOLORS] = arch["colors"]
    cfg[K.CFG_WIDTH] = width
    cfg[K.CFG_HEIGHT] = height
    cfg[K.CFG_SRAM] = arch["sram_bytes"]
    cfg[K.CFG_SRAM_ROW] = arch["sram_bytes"] if sram_row is None else sram_row
    cfg[K.CFG_BANKS] = arch["banks"]
    cfg[K.CFG_BANK_BYTES] = arch["bank_bytes"]
    cfg[K.CFG_BANK_GROUPS] = arch["bank_groups"]
    cfg[K.CFG_READ_PORTS] = arch["read_ports"]
    cfg[K.CFG_STRIDE_PM1] = arch["stride_pm1_width"]
    cfg[K.CFG_MICROTHREADS] = arch["microthreads"] if microthreads is None else microthreads
    return cfg
