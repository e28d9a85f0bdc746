"""The decorators for engine kernels.

Kernels only index arrays the host allocated; none allocates. So they are compiled without
Numba's reference counting (_nrt=False): with it, every array taken out of the state costs
atomic increments and decrements. error_model="numpy" gives IEEE results (inf, nan) for
float division by zero instead of exceptions.

A `kernel` is called only by other kernels, so it gets no CPython wrapper (the wrapper that
unboxes 54 arrays took about a tenth of the cold compile). An `entry` is also called from
Python. Kernels take the mesh state as one pointer (ref.StateRef), so a call costs a few
nanoseconds and nothing is inlined in Numba's IR: LLVM inlines what is small.

One machine-code version per kernel: Numba compiles a kernel again for every new tuple of
argument types at its call sites, and types a constant argument as its literal value
(`fault(S, p, F_ALIGN, a)` and `fault(S, p, F_BAD_DSD, a)` were two compiles, 89 in all
for 49 kernels). A kernel's calls are typed with literals dropped and integers widened to
int64 (the call site converts), so each kernel compiles once."""

from numba import njit, types

from . import ref  # noqa: F401  the StateRef type every kernel takes: its edits recompile all

_OPTIONS = dict(cache=True, _nrt=False, error_model="numpy")


def _widen(t):
    t = types.unliteral(t)
    if isinstance(t, types.Integer) and (t.signed or t.bitwidth < 64):
        return types.int64
    return t


def _one_signature(dispatcher):
    typed = dispatcher.get_call_template

    def get_call_template(args, kws):
        return typed(tuple(_widen(a) for a in args), {k: _widen(v) for k, v in kws.items()})

    dispatcher.get_call_template = get_call_template
    return dispatcher


def kernel(fn):
    return _one_signature(njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, **_OPTIONS)(fn))


def entry(fn):
    return _one_signature(njit(**_OPTIONS)(fn))
