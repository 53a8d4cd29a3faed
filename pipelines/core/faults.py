"""Fault injection for the crash tests: kill this process, or fail a write, at a chosen point.

Two environment variables, read once when this module is imported; with neither set every hook
returns at once (one global lookup), so production runs pay nothing.

``CORPUSFORGE_FAULT_LIST=<file>``
    Append one line per point reached to ``<file>``: ``<point>\\t<detail>``. Points are named
    step boundaries (``executor.task.before:<step>:<task>``, ``release.before_rename``, ...,
    see :func:`fault_point`) and numbered writes (``write:<n>``, the n-th call of a write
    helper in this process, see :func:`fault_write`). A named point reached again in the same
    process (a push's second chunk) is ``<point>#2``, then ``#3``, ...; so every point of a run
    has a name of its own. A dry run with this set enumerates the kill points of a command.

``CORPUSFORGE_FAULT_AT=<point>[:<action>]``
    At the first time ``<point>`` is reached, do ``<action>``:

    * ``kill`` (default): SIGKILL this process, as a power cut or the OOM killer would. At a
      ``write:<n>`` point the temporary file is first cut to half its size, so the process dies
      in the middle of the write (after part of the file reached disk, before the rename).
    * ``enospc``: raise ``OSError(ENOSPC)`` naming the file, as a full disk would.
    * ``erofs``: raise ``OSError(EROFS)`` naming the file, as a read-only file system would.

    e.g. ``CORPUSFORGE_FAULT_AT=write:5:enospc`` or
    ``CORPUSFORGE_FAULT_AT=executor.commit.before_rename:split``.

The hooks run in whichever process reaches them; with several worker processes each counts its
own writes, so the crash tests run builds with ``executor.workers=1``.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV_AT = "CORPUSFORGE_FAULT_AT"
ENV_LIST = "CORPUSFORGE_FAULT_LIST"
ACTIONS = ("kill", "enospc", "erofs")


def _parse(spec: str | None) -> tuple[str, str] | None:
    if not spec:
        return None
    point, _, action = spec.rpartition(":")
    if action in ACTIONS and point:
        return point, action
    return spec, "kill"


_AT = _parse(os.environ.get(ENV_AT))
_LIST = os.environ.get(ENV_LIST) or None
ACTIVE = _AT is not None or _LIST is not None
_writes = 0
_seen: dict[str, int] = {}


def fault_point(name: str, path: Path | str | None = None) -> None:
    """A named kill point (a step boundary); its n-th time in this process is ``<name>#<n>``.
    No effect unless a fault variable is set."""
    if ACTIVE:
        n = _seen[name] = _seen.get(name, 0) + 1
        _reach(name if n == 1 else f"{name}#{n}", path, None)


def fault_write(path: Path | str, tmp: Path | str | None = None) -> None:
    """Count one write of ``path`` (called after its temporary file ``tmp`` was written, before
    the rename); it is the point ``write:<n>``. No effect unless a fault variable is set."""
    if ACTIVE:
        global _writes
        _writes += 1
        _reach(f"write:{_writes}", path, tmp)


def _reach(name: str, path: Path | str | None, tmp: Path | str | None) -> None:
    if _LIST:
        with open(_LIST, "a", encoding="utf-8") as f:
            f.write(f"{name}\t{path or ''}\n")
    if _AT is None or _AT[0] != name:
        return
    action = _AT[1]
    if action == "kill":
        if tmp is not None:  # die in the middle of the write: half of the file reached the disk
            try:
                size = os.path.getsize(tmp)
                os.truncate(tmp, size // 2)
            except OSError:
                pass
        os.kill(os.getpid(), signal.SIGKILL)
    code = errno.ENOSPC if action == "enospc" else errno.EROFS
    raise OSError(code, os.strerror(code), str(path or name))
