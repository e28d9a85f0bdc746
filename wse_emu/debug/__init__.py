"""The step debugger: a session over one mesh (session.py) and its command loop (repl.py)."""

from .session import DebugError, Session

__all__ = ["DebugError", "Session"]
