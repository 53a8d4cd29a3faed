"""The environment that worker processes start with (the local pool's and Ray's).

Both settings must be in a worker's environment before it imports polars, so they are given
when the process is started, not set inside it:

* ``POLARS_MAX_THREADS``: a worker's polars uses as many threads as the worker has cores.
* ``_RJEM_MALLOC_CONF``: polars' allocator (jemalloc). Importing polars asks jemalloc to hand
  freed pages back to the system after 0.5 s (``dirty_decay_ms:500``), which keeps an
  interactive session small; a build worker allocates and frees frames of hundreds of MB over
  and over, and each time the pages handed back are faulted in (zeroed) again. Workers keep them
  for 10 s instead, jemalloc's own default: a SAD build of 2M nodes spent 7.3-7.5 s of system
  time with 0.5 s and 3.9-4.2 s with 10 s, and took 10-13% less wall time
  (``docs/benchmarks.md``). Memory stays bounded: a worker keeps at most what it held at its
  peak. Settings the user gave in ``_RJEM_MALLOC_CONF`` come last, so they win.

The process that imports ``pipelines`` runs tasks too (a source step's files, a one-worker
build), so importing the package gives it the same allocator settings
(:func:`configure_this_process`) unless polars was imported first; then it keeps polars' own.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

JEMALLOC_ENV = "_RJEM_MALLOC_CONF"
WORKER_DECAY = "dirty_decay_ms:10000,muzzy_decay_ms:10000"
# what polars' __init__ puts first in JEMALLOC_ENV (polars 1.x/2.x), before the user's own value
POLARS_DECAY = "dirty_decay_ms:500,muzzy_decay_ms:1000"


def worker_env(threads: int) -> dict[str, str]:
    """Variables for a worker process with ``threads`` cores."""
    return {"POLARS_MAX_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), JEMALLOC_ENV: allocator_conf()}


def allocator_conf(current: str | None = None) -> str:
    """The worker's jemalloc settings: the worker decay, then what the user set (not polars' defaults)."""
    current = os.environ.get(JEMALLOC_ENV, "") if current is None else current
    user = current.removeprefix(POLARS_DECAY).strip(",")
    return ",".join(part for part in (WORKER_DECAY, user) if part)


def configure_this_process() -> bool:
    """Give this process the worker's allocator settings; too late (False) once polars is imported."""
    if "polars" in sys.modules:
        return False
    os.environ[JEMALLOC_ENV] = allocator_conf()
    return True


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards (processes started inside inherit them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
