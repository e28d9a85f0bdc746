"""The debugger's command loop: gdb-style commands over a Session. Interactive on a
terminal (readline history and tab completion), or scripted from a file or a pipe."""

from __future__ import annotations

import cmd
import os
import re
from pathlib import Path

from .session import DebugError, Session

INFO_TOPICS = ("breakpoints", "registers", "dsds", "tasks", "queues", "routes", "stats", "record")
ALIASES = {
    "si": "stepi",
    "s": "step",
    "c": "continue",
    "b": "break",
    "p": "print",
    "l": "list",
    "q": "quit",
    "i": "info",
    "disas": "disassemble",
    "n": "next",
    "bt": "backtrace",
    "where": "backtrace",
    "reverse-stepi": "reverse_stepi",
    "rsi": "reverse_stepi",
    "reverse-continue": "reverse_continue",
    "rc": "reverse_continue",
}
# Enter repeats these, as in gdb
REPEATABLE = ("stepi", "step", "next", "continue", "finish", "reverse_stepi", "reverse_continue")
HISTORY_LENGTH = 1000


def history_path() -> Path:
    """Where the command history is kept: $XDG_STATE_HOME/wse-emu/history when that is set,
    else ~/.wse_emu_history."""
    state = os.environ.get("XDG_STATE_HOME")
    if state:
        return Path(state) / "wse-emu" / "history"
    return Path.home() / ".wse_emu_history"


def load_history() -> bool:
    """Read the history file into readline; False (and no error) when readline is missing
    or the file cannot be read."""
    try:
        import readline
    except ImportError:
        return False
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(history_path())
    except (OSError, ValueError):
        return False
    return True


def save_history() -> bool:
    """Write readline's history; False (and no error) when it cannot."""
    try:
        import readline

        path = history_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
    except (ImportError, OSError, ValueError):
        return False
    return True


def _tile(text: str) -> tuple:
    m = re.fullmatch(r"\s*\(?\s*(\d+)\s*[, ]\s*(\d+)\s*\)?\s*", text)
    if not m:
        raise DebugError(f"a tile is X,Y (e.g. 2,3), got {text.strip()!r}")
    return int(m.group(1)), int(m.group(2))


def _count(arg: str, what: str) -> int:
    try:
        return int(arg)
    except ValueError:
        raise DebugError(f"{what} wants a number, got {arg.strip()!r}") from None


def _numbers(arg: str) -> list[int]:
    try:
        return [int(v) for v in arg.split()]
    except ValueError:
        raise DebugError(f"expected breakpoint numbers, got {arg!r}") from None


class Debugger(cmd.Cmd):
    intro = None
    prompt = "(wse) "

    def __init__(self, session: Session, stdin=None, stdout=None, echo=False, history=False):
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.s = session
        self.echo = echo
        self.quit = False
        self.history = history  # keep the readline history between sessions (a terminal)

    # ------------------------------------------------------------------ plumbing
    def say(self, lines):
        for line in [lines] if isinstance(lines, str) else lines:
            self.stdout.write(line + "\n")

    def precmd(self, line):
        if self.echo and line.strip():
            self.stdout.write(f"{self.prompt}{line.strip()}\n")
        word, _, rest = line.strip().partition(" ")
        if word.startswith("x/"):
            return f"x {word[1:]} {rest}"
        if word == "help":
            rest = ALIASES.get(rest.strip(), rest)
        return f"{ALIASES.get(word, word)} {rest}".strip()

    def onecmd(self, line):
        try:
            return super().onecmd(line)
        except DebugError as e:
            self.say(f"error: {e}")
        except Exception as e:  # noqa: BLE001 (a bug must not end the user's session)
            self.say(f"internal error, please report it: {type(e).__name__}: {e}")
        return False

    def preloop(self):
        """Command names hold '-' (reverse-stepi): let readline complete across it."""
        try:
            import readline

            readline.set_completer_delims(readline.get_completer_delims().replace("-", ""))
        except ImportError:
            pass

    def cmdloop(self, intro=None):
        """Ctrl-C at the prompt cancels the line being typed, as in gdb; the session stays."""
        if self.history:
            load_history()
        try:
            while True:
                try:
                    return super().cmdloop(intro)
                except KeyboardInterrupt:
                    self.stdout.write("^C\n")
                    intro = None
        finally:
            if self.history:
                save_history()

    def emptyline(self):
        """Enter repeats the last step or continue, as in gdb; other commands are not
        repeated."""
        if self.lastcmd.split(" ")[0] in REPEATABLE:
            return self.onecmd(self.lastcmd)
        return False

    def default(self, line):
        self.say(f"error: unknown command {line.split()[0]!r}; type 'help' for the list")

    def get_names(self):
        """The command list `help` shows: EOF (Ctrl-D) leaves, but is not a command."""
        return [n for n in super().get_names() if n != "do_EOF"]

    def print_topics(self, header, cmds, cmdlen, maxcol):
        """help lists reverse_stepi as it is typed: reverse-stepi."""
        super().print_topics(header, [c.replace("_", "-") for c in cmds or []], cmdlen, maxcol)

    def do_EOF(self, arg):
        """Leave the debugger."""
        self.quit = True
        return True

    def do_quit(self, arg):
        """Leave the debugger."""
        self.quit = True
        return True

    # ------------------------------------------------------------------ focus, state
    def do_tile(self, arg):
        """tile X Y: focus the debugger on tile (X, Y)."""
        self.s.set_focus(*_tile(arg))
        self.say(self.s.status_line())

    def do_mesh(self, arg):
        """mesh: every tile's state as a character map; the focused tile in [ ]."""
        self.say(self.s.mesh_map())

    def do_status(self, arg):
        """status: the focused tile's pc, source line, clock, task and state."""
        self.say(self.s.status_line())

    # ------------------------------------------------------------------ running
    def do_stepi(self, arg):
        """stepi [N]: run N instructions of the focused tile (default 1); the rest of the
        mesh runs as far as the model needs."""
        n = _count(arg, "stepi") if arg.strip() else 1
        if not 0 < n < 1 << 62:
            raise DebugError("stepi needs a positive count")
        self.say(self.s.stepi(n))

    def do_step(self, arg):
        """step: run the focused tile to its next source line."""
        self.say(self.s.step())

    def do_next(self, arg):
        """next: run the focused tile to its next source line, running calls to their
        return."""
        self.say(self.s.next())

    def do_backtrace(self, arg):
        """backtrace (bt, where): the focused tile's call frames, innermost first."""
        self.say(self.s.backtrace())

    def do_continue(self, arg):
        """continue: run until a breakpoint or watchpoint triggers or the program ends."""
        self.say(self.s.cont())

    def do_until(self, arg):
        """until CYCLE: run the whole mesh until its slowest running tile reaches CYCLE."""
        try:
            cycle = int(arg)
        except ValueError:
            raise DebugError("until needs a cycle number") from None
        if not 0 < cycle < 1 << 62:
            raise DebugError(f"until needs a cycle in [1, 2**62), got {cycle}")
        self.say(self.s.until(cycle))

    def do_finish(self, arg):
        """finish: run until the focused tile's current task ends."""
        self.say(self.s.finish())

    # ------------------------------------------------------------------ reverse execution
    def do_record(self, arg):
        """record: start recording, so reverse-stepi, reverse-continue and goto can go back
        to any point after this one. The mesh is copied every N units (default 64; a unit
        is one instruction of a tile, or a continue).
        record stop: end it and free the copies. record interval N: copy every N units
        (fewer copies use less memory; going back then replays more). info record: the
        cost."""
        words = arg.split()
        if not words:
            self.say(self.s.record_start())
        elif words == ["stop"]:
            self.say(self.s.record_stop())
        elif len(words) == 2 and words[0] == "interval":
            self.say(self.s.record_interval(_count(words[1], "record interval")))
        else:
            raise DebugError("usage: record | record stop | record interval N")

    def do_reverse_stepi(self, arg):
        """reverse-stepi [N] (rsi): back N instructions of the focused tile (default 1);
        needs `record`."""
        n = _count(arg, "reverse-stepi") if arg.strip() else 1
        if not 0 < n < 1 << 62:
            raise DebugError("reverse-stepi needs a positive count")
        self.say(self.s.reverse_stepi(n))

    def do_reverse_continue(self, arg):
        """reverse-continue (rc): back to the last point where a breakpoint or watchpoint
        stopped, or would have stopped, a forward run; needs `record`."""
        self.say(self.s.reverse_continue())

    def do_goto(self, arg):
        """goto CYCLE: forwards or backwards to the first point where the focused tile's
        clock is >= CYCLE (breakpoints are not checked on the way); needs `record`."""
        cycle = _count(arg, "goto")
        if not 0 <= cycle < 1 << 62:
            raise DebugError(f"goto needs a cycle in [0, 2**62), got {cycle}")
        self.say(self.s.goto(cycle))

    # ------------------------------------------------------------------ breakpoints
    def _break(self, arg, temporary):
        m = re.fullmatch(r"\s*(\S+)(?:\s+tile\s+([\d, ()]+?)|\s+(all))?(?:\s+if\s+(.+))?\s*", arg)
        if not m:
            raise DebugError("usage: break LABEL|LINE|*ADDR [tile X,Y | all] [if CONDITION]")
        tiles = None if m.group(3) else [_tile(m.group(2))] if m.group(2) else [self.s.focus]
        bp = self.s.add_breakpoint(m.group(1), tiles, m.group(4), temporary)
        where = "every tile running it" if bp.tiles is None else ", ".join(map(str, bp.tiles))
        cond = f" if {bp.cond}" if bp.cond else ""
        kind = "Temporary breakpoint" if temporary else "Breakpoint"
        pcs = ", ".join(map(str, bp.pcs))
        self.say(f"{kind} {bp.num} at pc {pcs} ({self.s.linked.where(bp.pcs[0])}) on {where}{cond}")

    def do_break(self, arg):
        """break LABEL|LINE|*ADDR [tile X,Y | all] [if COND]: stop before that instruction
        (a task's name breaks at its entry). COND uses r0-r15, f0-f15, pc, x, y, clock."""
        self._break(arg, False)

    def do_tbreak(self, arg):
        """tbreak ...: a breakpoint that deletes itself when it triggers."""
        self._break(arg, True)

    def do_delete(self, arg):
        """delete [N ...]: delete breakpoints or watchpoints (all without numbers)."""
        self.s.delete(_numbers(arg))

    def do_disable(self, arg):
        """disable N ...: keep breakpoints without letting them trigger."""
        self.s.enable(_numbers(arg), False)

    def do_enable(self, arg):
        """enable N ...: let disabled breakpoints trigger again."""
        self.s.enable(_numbers(arg), True)

    def do_watch(self, arg):
        """watch SYMBOL[i] | ADDR: stop when the focused tile writes a new value there.
        watch color C at X,Y: stop when a wavelet of color C lands at tile (X, Y).
        watch link X,Y DIR: stop when that link (DIR = north|east|south|west) is full or
        backpressured."""
        m = re.fullmatch(r"\s*color\s+(\d+)\s+at\s+(.+)", arg)
        if m:
            w = self.s.watch_color(int(m.group(1)), _tile(m.group(2)))
        elif m := re.fullmatch(r"\s*link\s+([\d, ()]+?)\s+(\w+)\s*", arg):
            w = self.s.watch_link(_tile(m.group(1)), m.group(2))
        elif arg.strip():
            w = self.s.watch_symbol(arg)
        else:
            raise DebugError("usage: watch SYMBOL[i] | ADDR | color C at X,Y | link X,Y DIR")
        self.say(
            f"Watchpoint {w.num}: {w.what}" + (f" on tile {w.tile}" if w.kind == "write" else "")
        )

    # ------------------------------------------------------------------ inspection
    def do_info(self, arg):
        """info breakpoints|registers|dsds|tasks|queues|routes|stats (of the focused tile)."""
        topic = arg.strip()
        match = [t for t in INFO_TOPICS if t.startswith(topic)] if topic else []
        if len(match) != 1:
            raise DebugError("info " + "|".join(INFO_TOPICS))
        topic = match[0]
        if topic == "breakpoints":
            self.say(self._breakpoint_table())
        else:
            name = {
                "registers": "registers",
                "dsds": "dsds",
                "tasks": "tasks",
                "queues": "queues",
                "routes": "routes",
                "stats": "tile_stats",
                "record": "record_info",
            }[topic]
            self.say(getattr(self.s, name)())

    def complete_info(self, text, line, begidx, endidx):
        return [t for t in INFO_TOPICS if t.startswith(text)]

    def _breakpoint_table(self):
        rows = ["Num  Type        Enb  What"]
        for bp in self.s.breakpoints.values():
            tiles = "all" if bp.tiles is None else ",".join(str(t) for t in bp.tiles)
            cond = f" if {bp.cond}" if bp.cond else ""
            kind = "tbreakpoint" if bp.temporary else "breakpoint"
            rows.append(
                f"{bp.num:<4} {kind:<11} {'y' if bp.enabled else 'n':<4} "
                f"pc {','.join(map(str, bp.pcs))} "
                f"{bp.where} tile {tiles}{cond}, hit {bp.hits} times"
            )
        for w in self.s.watches.values():
            rows.append(
                f"{w.num:<4} {'watch ' + w.kind:<11} y    {w.what}"
                + (f" on tile {w.tile}" if w.kind == "write" else "")
                + f", hit {w.hits} times"
            )
        return rows if len(rows) > 1 else ["No breakpoints or watchpoints."]

    def do_x(self, arg):
        """x/N<fmt> SYMBOL|ADDR: examine N values of SRAM on the focused tile; fmt is one of
        f16 bf16 f32 i16 i8 i32 x (hex 32-bit words)."""
        m = re.fullmatch(r"\s*/(\d*)(\w+)\s+(.+)", arg)
        if not m:
            raise DebugError("usage: x/N<fmt> SYMBOL|ADDR, e.g. x/8f32 y")
        self.say(self.s.examine(int(m.group(1) or 1), m.group(2), m.group(3)))

    def do_print(self, arg):
        """print SYMBOL[i:j] | $REG: a symbol (or a slice of it) on the focused tile, as
        NumPy; or a register: $r0-$r15, $f0-$f15, $pc, $clock."""
        self.say(self.s.print_symbol(arg))

    def do_list(self, arg):
        """list [LINE|LABEL]: the source around the focused tile's pc (or that line or
        label)."""
        arg = arg.strip()
        if arg and not arg.lstrip("-").isdigit():
            im = self.s.image()
            if arg not in im.labels:
                raise DebugError(f"no line or label {arg!r}; labels: {', '.join(im.labels)}")
            self.say(self.s.listing(pc=im.labels[arg]))
            return
        self.say(self.s.listing(_count(arg, "list") if arg else None))

    def do_disassemble(self, arg):
        """disassemble: the instructions around the focused tile's pc."""
        self.say(self.s.disassembly())

    def do_why(self, arg):
        """why [X,Y]: why a tile waits: the chain of tiles it waits on, to a running, halted
        or faulted tile, or around a cycle (a deadlock)."""
        p = self.s.pe(*_tile(arg)) if arg.strip() else None
        self.say(self.s.why(p))

    # ------------------------------------------------------------------ completion
    def completenames(self, text, *ignored):
        names = super().completenames(text, *ignored)
        names += [a for a in ("reverse-stepi", "reverse-continue") if a.startswith(text)]
        return [n for n in names if n != "EOF" and "_" not in n]

    @staticmethod
    def _complete(items, text, line, begidx, endidx, start=None):
        """items that extend the argument typed so far (from start, by default after the
        command word), cut to readline's current word (readline splits at , $ and more)."""
        if start is None:
            start = len(line) - len(line.lstrip())
            start += len(line.lstrip().split(" ", 1)[0])
        while start < len(line) and line[start] == " ":
            start += 1
        typed = line[start:endidx]
        cut = max(0, begidx - start)
        return sorted({c[cut:] for c in items if c.startswith(typed)})

    def _labels(self):
        return {n for im in self.s.linked.images for n in im.labels}

    def _symbols(self):
        try:
            return set(self.s.image().symbols)
        except DebugError:
            return set()

    def _tiles(self):
        return [f"{x},{y}" for x, y in self.s.placed_tiles()]

    def complete_break(self, text, line, begidx, endidx):
        """Labels and task names; tiles after `tile`."""
        if m := re.search(r"\stile\s", line[:endidx]):
            return self._complete(self._tiles(), text, line, begidx, endidx, m.end())
        return self._complete(self._labels(), text, line, begidx, endidx)

    complete_tbreak = complete_break

    def complete_list(self, text, line, begidx, endidx):
        return self._complete(self._labels(), text, line, begidx, endidx)

    def complete_print(self, text, line, begidx, endidx):
        regs = [f"${r}{i}" for r in "rf" for i in range(16)] + ["$pc", "$clock"]
        return self._complete(self._symbols() | set(regs), text, line, begidx, endidx)

    def complete_x(self, text, line, begidx, endidx):
        return self._complete(self._symbols(), text, line, begidx, endidx)

    def complete_watch(self, text, line, begidx, endidx):
        return self._complete(self._symbols() | {"color", "link"}, text, line, begidx, endidx)

    def complete_tile(self, text, line, begidx, endidx):
        """The tiles a program is placed on, as X,Y."""
        return self._complete(self._tiles(), text, line, begidx, endidx)

    def complete_why(self, text, line, begidx, endidx):
        return self.complete_tile(text, line, begidx, endidx)

    def complete_record(self, text, line, begidx, endidx):
        return self._complete(("stop", "interval"), text, line, begidx, endidx)


def run_commands(session: Session, lines, stdout, echo=True) -> Debugger:
    """Run a list of command lines; stops at 'quit'."""
    dbg = Debugger(session, stdout=stdout, echo=echo)
    for line in lines:
        line = line.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if dbg.onecmd(dbg.precmd(line)):
            break
    return dbg
