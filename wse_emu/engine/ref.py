"""The mesh state as the kernels take it: one pointer to the MeshState tuple's native value.

Numba passes a tuple argument flattened: the 54 arrays of a MeshState are some 450 scalar
arguments, built at every call site and rebuilt in every callee. That made each call of a
kernel cost ~100 ns and made the big kernels worth inlining in Numba's IR, which then
dominated the engine's cold compile (deep copies of the inlined IR at each site). A
StateRef is the tuple's native value stored once in a small buffer; a kernel gets its
address, and `S.pe` loads that field. Kernels run without reference counting (jit.py),
so the arrays' meminfo pointers stored there are never used: the Python-side MeshState,
which the StateRef keeps, keeps the arrays alive."""

from __future__ import annotations

import hashlib

import numpy as np
from numba import njit, typeof
from numba.core import cgutils, types
from numba.core.typing.templates import AttributeTemplate
from numba.extending import (
    NativeValue,
    infer_getattr,
    intrinsic,
    lower_getattr_generic,
    models,
    register_model,
    typeof_impl,
    unbox,
)


class StateRefType(types.Type):
    """A pointer to a stored MeshState of the given Numba tuple type."""

    def __init__(self, tuple_type):
        self.tuple_type = tuple_type
        digest = hashlib.sha1(str(tuple_type).encode()).hexdigest()
        super().__init__(name=f"StateRef[{digest}]")

    @property
    def key(self):
        """The name, which digests the tuple type's full text: every call from Python hashes
        the argument types, and hashing the 54 array types took 50 us a call."""
        return self.name


@register_model(StateRefType)
class _StateRefModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        struct = dmm.lookup(fe_type.tuple_type).get_value_type()
        super().__init__(dmm, fe_type, struct.as_pointer())


@infer_getattr
class _StateRefAttrs(AttributeTemplate):
    key = StateRefType

    def generic_resolve(self, typ, attr):
        fields = typ.tuple_type.fields
        if attr in fields:
            return typ.tuple_type.types[fields.index(attr)]
        return None


@lower_getattr_generic(StateRefType)
def _getattr(context, builder, typ, value, attr):
    index = typ.tuple_type.fields.index(attr)
    return builder.load(cgutils.gep_inbounds(builder, value, 0, index))


@intrinsic
def _store(typingctx, buf, state):
    def codegen(context, builder, sig, args):
        arr = context.make_array(sig.args[0])(context, builder, args[0])
        ptr = builder.bitcast(arr.data, context.get_value_type(sig.args[1]).as_pointer())
        builder.store(args[1], ptr)
        return context.get_dummy_value()

    return types.none(buf, state), codegen


@njit(cache=True)
def _store_state(buf, state):
    _store(buf, state)


class StateRef:
    """A MeshState stored for the kernels. Holds the state, so its arrays outlive the ref."""

    __slots__ = ("state", "buf", "addr", "numba_type")

    def __init__(self, state):
        self.state = state
        tuple_type = typeof(state)
        self.numba_type = StateRefType(tuple_type)
        self.buf = np.zeros(_size_of(tuple_type), np.uint8)
        _store_state(self.buf, state)
        self.addr = self.buf.ctypes.data


_SIZES: dict = {}


def _size_of(tuple_type) -> int:
    if tuple_type not in _SIZES:
        from numba.core.registry import cpu_target

        ctx = cpu_target.target_context
        _SIZES[tuple_type] = ctx.get_abi_sizeof(ctx.get_value_type(tuple_type))
    return _SIZES[tuple_type]


@typeof_impl.register(StateRef)
def _typeof_ref(val, c):
    return val.numba_type


@unbox(StateRefType)
def _unbox(typ, obj, c):
    addr = c.pyapi.object_getattr_string(obj, "addr")
    ptr = c.pyapi.long_as_voidptr(addr)
    c.pyapi.decref(addr)
    return NativeValue(c.builder.bitcast(ptr, c.context.get_value_type(typ)))
