"""Link a ProgramSet onto a mesh: evaluate the layout, assemble each (program, params)
instance once, check every PE's SRAM footprint, and build the route tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import isa
from ..arch import ArchProfile
from .assembler import Image, assemble_program, base_scope, declared_mesh
from .errors import AsmError, join_notes
from .expr import Scope
from .parser import ProgramSet

DIR_BIT = {d: 1 << i for i, d in enumerate(isa.DIRECTIONS)}


@dataclass
class Region:
    image: int  # index into Linked.images
    x: int
    y: int
    w: int
    h: int


@dataclass
class Linked:
    """A program set placed on a width x height mesh; what the runtime loads."""

    pset: ProgramSet
    width: int
    height: int
    arch: ArchProfile
    images: list  # Image
    regions: list  # Region
    pe_image: np.ndarray  # int32[n_pe], -1 where nothing is placed
    code: np.ndarray  # int32[n_insn, 9] binary encoding, all images
    positions: list  # Pos per instruction
    rx: np.ndarray  # uint8[n_pe, colors, switch positions] direction bits
    tx: np.ndarray

    @property
    def filename(self) -> str:
        return self.pset.source.filename

    def image_at(self, x: int, y: int) -> Image | None:
        i = self.pe_image[y * self.width + x]
        return None if i < 0 else self.images[i]

    def region_at(self, x: int, y: int) -> Region | None:
        for r in self.regions:
            if r.x <= x < r.x + r.w and r.y <= y < r.y + r.h:
                return r
        return None

    def source_line(self, pc: int) -> tuple[int, str]:
        if not 0 <= pc < len(self.positions):
            return 0, ""
        pos = self.positions[pc]
        return pos.line, pos.src.line(pos.line)

    def where(self, pc: int) -> str:
        """'file:line: source' of an instruction, for reports (the file may be an included
        one; the text is the line without its comment)."""
        line, text = self.source_line(pc)
        src = self.positions[pc].src if 0 <= pc < len(self.positions) else self.pset.source
        return f"{src.filename}:{line}: {text}"


MAX_LOOP_ITERATIONS = 1 << 20  # iterations of one .repeat loop
# iterations of all .repeat loops of a layout together: a full-wafer layout (757 x 996 PEs)
# with a few per-PE items needs some millions; more would take minutes to expand
MAX_LAYOUT_ITERATIONS = 1 << 23


def mesh_hint(pset: ProgramSet, width: int, height: int, consts=None) -> str:
    """Which mesh the program wants, for an error about a layout that does not fit."""
    try:
        declared = declared_mesh(pset, consts)
    except AsmError:
        declared = None
    if declared is None:
        return (
            f"linked on a {width}x{height} mesh; the program declares no .mesh: "
            "add one (e.g. `.mesh 4x1`) or pass --mesh WxH"
        )
    if declared != (width, height):
        return (
            f"linked on a {width}x{height} mesh, but the program declares "
            f".mesh {declared[0]}x{declared[1]}: drop --mesh, or choose a size the layout fits"
        )
    return ""


def _rect(scope: Scope, trees, pos, width, height, hint=None):
    """(x, y, w, h), or None for an empty rectangle (a size of 0 places nothing). Each number
    must be an integer (bounded by the evaluator); a negative size is an error at its field."""
    x, y, w, h = (scope.int(t) for t in trees)
    for size, name, tree in ((w, "width", trees[2]), (h, "height", trees[3])):
        if size < 0:
            raise scope.pos(tree).error(f"rectangle {name} {size} is negative")
    if w == 0 or h == 0:
        return None
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise pos.error(
            f"rectangle at {x},{y} size {w},{h} leaves the {width}x{height} mesh",
            hint() if hint else "",
        )
    return x, y, w, h


def _expand(items, src, values: dict):
    """Each layout item once per binding of its enclosing .repeat loops, with its Scope. Each
    loop is bounded, and so are all iterations together: nested loops multiply, and two
    nested ones of a million iterations each would run for ever."""
    budget = [MAX_LAYOUT_ITERATIONS]
    for item in items:
        yield from _bind(item, item.loops, src, dict(values), budget)


def _bind(item, loops, src, values, budget):
    if not loops:
        scope = Scope(src, values)
        if all(bool(scope.eval(tree)) == want for tree, want in item.conds):
            yield item, scope
        return
    loop, rest = loops[0], loops[1:]
    scope = Scope(src, values)
    start, stop = scope.int(loop.start), scope.int(loop.stop)
    if stop - start > MAX_LOOP_ITERATIONS:
        raise loop.pos.error(
            f".repeat of {stop - start} iterations is too many (limit {MAX_LOOP_ITERATIONS})"
        )
    budget[0] -= max(stop - start, 0)
    if budget[0] < 0:
        raise loop.pos.error(
            f".repeat of {stop - start} iterations: the layout's loops would run more than "
            f"{MAX_LAYOUT_ITERATIONS} iterations in all"
        )
    for i in range(start, stop):
        yield from _bind(item, rest, src, dict(values, **{loop.name: i}), budget)


def link(
    pset: ProgramSet, width: int, height: int, arch: ArchProfile, consts: dict | None = None
) -> Linked:
    if width <= 0 or height <= 0:
        raise AsmError(f"mesh must be at least 1x1, got {width}x{height}", pset.source.filename)
    n_colors = arch["colors"]
    globals_ = base_scope(pset, width, height, consts)
    src = pset.source
    places = list(_expand(pset.places, src, globals_))
    if not pset.programs:
        raise AsmError(
            "no program: the file has no code or data", pset.source.filename, 1, 1, pset.source.text
        )
    if not pset.places:  # no .place at all (not: every .place left out by .if or .repeat)
        if len(pset.programs) > 1:
            raise AsmError(
                "several programs but no 'place' in a .layout section",
                pset.source.filename,
                1,
                1,
                pset.source.text,
            )
        places = None
    pe_image = np.full(width * height, -1, np.int32)
    instances = {}
    images: list[Image] = []
    regions = []
    base = 0
    plan = places if places is not None else [(None, None)]
    for place, scope in plan:
        if place is None:
            prog = next(iter(pset.programs.values()))
            rect, overrides = (0, 0, width, height), {}
        else:
            if place.program not in pset.programs:
                raise place.pos.error(
                    f"no program named {place.program!r}", "programs: " + ", ".join(pset.programs)
                )
            prog = pset.programs[place.program]
            rect = _rect(
                scope,
                place.rect,
                place.pos,
                width,
                height,
                lambda: mesh_hint(pset, width, height, consts),
            )
            if rect is None:
                continue
            overrides = {n: (scope.eval(e), p) for n, e, p in place.params}
        key = (prog.name, tuple(sorted((k, v[0]) for k, v in overrides.items())))
        if key not in instances:
            image = _assemble(pset, prog, globals_, overrides, base, n_colors, place)
            _check_footprint(image, arch, place.pos if place else prog.pos)
            _check_arch(image, arch)
            _bind_queues(image, arch)
            _check_targets(image, prog)
            instances[key] = len(images)
            images.append(image)
            base += len(image.code)
        index = instances[key]
        x, y, w, h = rect
        block = pe_image.reshape(height, width)[y : y + h, x : x + w]
        if (block >= 0).any():
            raise (place.pos if place else prog.pos).error(
                f"placement of {prog.name!r} at {x},{y} size {w},{h} overlaps an earlier placement",
                mesh_hint(pset, width, height, consts),
            )
        block[:] = index
        regions.append(Region(index, x, y, w, h))
    code = (
        np.concatenate([im.code for im in images])
        if images
        else np.zeros((0, isa.ENCODING_WORDS), np.int32)
    )
    positions = [p for im in images for p in im.positions]
    rx = np.zeros((width * height, n_colors, isa.SWITCH_POSITIONS), np.uint8)
    tx = np.zeros_like(rx)
    for route, scope in _expand(pset.routes, src, globals_):
        color = scope.int(route.color)
        if not 0 <= color < n_colors:
            raise route.pos.error(f"color {color} out of range 0-{n_colors - 1}")
        position = 0 if route.position is None else scope.int(route.position)
        if not 0 <= position < isa.SWITCH_POSITIONS:
            raise route.pos.error(
                f"switch position {position} out of range 0-{isa.SWITCH_POSITIONS - 1}"
            )
        rect = _rect(scope, route.rect, route.pos, width, height)
        if rect is None:
            continue
        x, y, w, h = rect
        grid = (height, width, n_colors, isa.SWITCH_POSITIONS)
        rx.reshape(grid)[y : y + h, x : x + w, color, position] = sum(
            DIR_BIT[d] for d in set(route.rx)
        )
        tx.reshape(grid)[y : y + h, x : x + w, color, position] = sum(
            DIR_BIT[d] for d in set(route.tx)
        )
    return Linked(pset, width, height, arch, images, regions, pe_image, code, positions, rx, tx)


def _assemble(pset, prog, globals_, overrides, base, n_colors, place):
    """assemble_program; an error in a program whose params decide .if blocks says which
    placement (and params) it came from, as it may hold for some placements only."""
    try:
        return assemble_program(pset, prog, globals_, overrides, base, n_colors)
    except AsmError as e:
        if place is not None and prog.has_conds:
            params = ", ".join(f"{k} = {v[0]}" for k, v in overrides.items()) or "default params"
            where = f"{place.pos.src.filename}:{place.pos.line}"
            e.hint = join_notes(e.hint, f"for the .place at {where} ({params})")
        raise


def _check_footprint(image: Image, arch: ArchProfile, pos):
    code_bytes = len(image.code) * arch["code_bytes_per_insn"]
    total = image.data_bytes + code_bytes
    limit = arch["sram_bytes"]
    if total > limit:
        syms = sorted(image.symbols.values(), key=lambda s: -s.nbytes)
        listing = ", ".join(f"{s.name} {s.dtype}{list(s.shape)} = {s.nbytes} B" for s in syms[:8])
        raise pos.error(
            f"program {image.program!r} needs {total} bytes of SRAM per PE but a PE has {limit}",
            f"data {image.data_bytes} B ({listing}); code {len(image.code)} instructions = "
            f"{code_bytes} B",
        )


def _check_targets(image: Image, prog):
    """Every jump, branch and call target, and main, must be an instruction of the image
    itself: a label after the last instruction would send the PE into the next image's
    code (the engine then faults at run time, but this one is known now)."""
    end = image.base + len(image.code)
    if len(image.code) and image.main >= end:
        raise prog.labels["main"][1].error(
            f"'main:' is at the end of program {image.program!r}: no code follows it"
        )
    table = isa.table()
    names = {pc: name for name, pc in image.labels.items()}
    for word, where in zip(image.code, image.positions):
        row = table[word[0]]
        for op, f in zip(row.operands, row.fields):
            field = 4 + f
            if op.kind == "label" and word[field] >= end:
                raise where.error(
                    f"label {names.get(int(word[field]), '?')!r} is at the end of program "
                    f"{image.program!r}: no instruction follows it",
                    "add the instruction to run there (halt, ret, jmp ...)",
                )


# which queue the color operand of each semantics group takes (switch's color is routed,
# not queued)
_QUEUE_DIRECTION = {"dfin": "in", "recv": "in", "dfout": "out", "send": "out", "sendx": "out"}


def _bind_queues(image: Image, arch: ArchProfile):
    """WSE-3: every color a program receives on (fabric input, recv, data task) takes an
    input queue and every color it sends on an output queue, each queue bound to one color
    (wse-facts: WSE-3 queues). `.queue in|out Q color C` binds explicitly; other colors take
    the lowest free queue in order of first use. More colors than queues, or a queue bound
    to two colors, is an error. On an arch without queues (wse2: one per color), `.queue`
    is refused."""
    counts = {"in": arch["input_queues"], "out": arch["output_queues"]}
    names = {"in": "input", "out": "output"}
    if counts["in"] == 0 and counts["out"] == 0:
        if image.queue_decls:
            raise image.queue_decls[0][3].error(
                f".queue needs an arch with queues bound to colors: {arch.name} has one queue "
                "per color",
                "use --arch wse3, or drop .queue",
            )
        return
    bound: dict = {}  # (dir, color) -> queue
    owner: dict = {}  # (dir, queue) -> (color, pos)
    for d, q, color, pos in image.queue_decls:
        if q >= counts[d]:
            raise pos.error(f"{names[d]} queue {q} does not exist: {arch.name} has {counts[d]}")
        if (d, q) in owner and owner[(d, q)][0] != color:
            c0, p0 = owner[(d, q)]
            raise pos.error(
                f"{names[d]} queue {q} is already bound to color {c0} (line {p0.line}); "
                "a queue carries one color",
                "bind this color to another queue (reusing one needs a flush, not modelled)",
            )
        if (d, color) in bound and bound[(d, color)] != q:
            raise pos.error(
                f"color {color} is already bound to {names[d]} queue {bound[(d, color)]}"
            )
        bound[(d, color)] = q
        owner[(d, q)] = (color, pos)
    # in program order; a data task takes its color's input queue at its first instruction
    uses = [(entry - image.base, "in", c) for _, entry, c in image.tasks if c >= 0]
    table = isa.table()
    for i, word in enumerate(image.code):
        row = table[word[0]]
        d = _QUEUE_DIRECTION.get(row.sem)
        if d is not None:
            k = next(j for j, op in enumerate(row.operands) if op.kind == "color")
            uses.append((i, d, int(word[4 + row.fields[k]])))
    for i, d, color in sorted(uses, key=lambda u: u[0]):
        pos = image.positions[i]
        if (d, color) in bound:
            continue
        free = next((q for q in range(counts[d]) if (d, q) not in owner), None)
        if free is None:
            taken = ", ".join(f"{q}: color {owner[(d, q)][0]}" for q in range(counts[d]))
            raise pos.error(
                f"no free {names[d]} queue for color {color}: {arch.name} has {counts[d]}, "
                f"bound {taken}",
                "use fewer colors in this program, or --arch wse2 (one queue per color)",
            )
        bound[(d, color)] = free
        owner[(d, free)] = (color, pos)
    image.queues = bound


def microthread_id(word, row) -> int:
    """The microthread id an encoded instruction names (async, utblock, ...), or -1."""
    return next(
        (int(word[4 + f]) for op, f in zip(row.operands, row.fields) if op.kind == "ut"), -1
    )


def _check_arch(image: Image, arch: ArchProfile):
    table = isa.table()
    for word, pos in zip(image.code, image.positions):
        row = table[word[0]]
        dtype = isa.DTYPES[word[1]] if (row.dtypes or row.fixed) else None
        cls = row.cost_class(dtype) if isinstance(row.cost, dict) else row.cost
        if cls in isa.costs()["simd"] and arch.simd_width(cls) == 0:
            raise pos.error(
                f"{row.mnemonic}.{dtype} needs {cls} SIMD, which {arch.name} does not have",
                "use --arch wse3",
            )
        ut = microthread_id(word, row)
        if ut >= arch["microthreads"]:
            raise pos.error(
                f"microthread {ut} out of range: {arch.name} has "
                f"{arch['microthreads']} (ids 0-{arch['microthreads'] - 1})"
            )
