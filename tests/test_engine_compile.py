"""How the engine is compiled: one signature per kernel, the state passed as one pointer,
and which cached modules an edit to one engine file throws away."""

import shutil

import numpy as np
from numba.core.caching import NullCache

from wse_emu.engine import _HERE, module_digests
from wse_emu.engine.jit import entry, kernel
from wse_emu.engine.ref import StateRef, StateRefType
from wse_emu.engine.state import new_state


@kernel
def _scaled(x, k):
    return x * k


@entry
def _calls(x):
    """Calls _scaled with literal, int64 and int32 arguments."""
    return _scaled(x, 3) + _scaled(x, 4) + _scaled(np.int32(x), x)


# compiled afresh in every session: signatures from a disk cache would prove nothing
_scaled._cache = _calls._cache = NullCache()


def test_a_kernel_compiles_once_for_literal_and_narrow_integer_arguments():
    assert _calls(5) == 15 + 20 + 25
    assert [[str(t) for t in sig] for sig in _scaled.signatures] == [["int64", "int64"]]


@kernel
def _poke(S, p, v):
    S.pe[p, 3] = v
    S.sram8[p, 7] = S.pe[p, 3] + 1
    return S.regs.shape[0]


@entry
def _poke_all(S, v):
    n = 0
    for p in range(S.pe.shape[0]):
        n = _poke(S, p, v + p)
    return n


def _state(n_pe=3):
    code = np.zeros((1, 16), np.int32)
    rx = np.zeros((n_pe, 2, 4), np.uint8)
    return new_state(
        code, n_pe, 1, np.zeros(64, np.int64), rx, rx, np.ones(n_pe * 2, np.int64), 64, 2
    )


def test_kernels_read_and_write_the_states_own_arrays_through_the_ref():
    S = _state()
    ref = StateRef(S)
    assert isinstance(ref.numba_type, StateRefType)
    assert _poke_all(ref, 40) == 3
    assert list(S.pe[:, 3]) == [40, 41, 42]
    assert list(S.sram8[:, 7]) == [41, 42, 43]


def test_two_states_of_the_same_shape_kinds_share_one_type():
    assert StateRef(_state(2)).numba_type == StateRef(_state(5)).numba_type


def test_an_edit_to_one_engine_file_stales_it_and_the_modules_that_use_it(tmp_path):
    for f in _HERE.glob("*.py"):
        shutil.copy(f, tmp_path / f.name)
    before = module_digests(tmp_path)
    assert before == module_digests(_HERE)
    bank = tmp_path / "bank.py"
    bank.write_text(bank.read_text() + "\n# an edit\n")
    after = module_digests(tmp_path)
    stale = {m for m in before if before[m] != after[m]}
    assert {"bank", "vector", "microthread", "core"} <= stale
    assert not stale & {"fabric", "sched", "events", "dsd", "fp", "control", "pipeline", "jit"}


def test_an_edit_to_the_jit_options_stales_every_kernel_module(tmp_path):
    for f in _HERE.glob("*.py"):
        shutil.copy(f, tmp_path / f.name)
    before = module_digests(tmp_path)
    (tmp_path / "ref.py").write_text((tmp_path / "ref.py").read_text() + "\n")
    after = module_digests(tmp_path)
    kernels = {f.stem for f in _HERE.glob("*.py") if "@kernel" in f.read_text()}
    assert kernels and all(before[m] != after[m] for m in kernels)
