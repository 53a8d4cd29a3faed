"""Secrets (API tokens, passwords): from the environment or a git-ignored ``.secrets.toml``.

Never from ``corpusforge.toml``, never logged: :class:`Secret` prints as ``***``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

SECRETS_FILE = ".secrets.toml"


@dataclass(frozen=True)
class Secret:
    name: str
    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name}=***)"

    __str__ = __repr__


def get_secret(name: str, *, directory: Path | None = None, env: dict[str, str] | None = None) -> Secret | None:
    """``CORPUSFORGE_<NAME>`` from the environment, else ``name`` from ``.secrets.toml``."""
    env = dict(os.environ) if env is None else env
    var = f"CORPUSFORGE_{name.upper()}"
    if env.get(var):
        return Secret(name, env[var])
    path = (directory or Path.cwd()) / SECRETS_FILE
    if path.exists():
        value = tomllib.loads(path.read_text(encoding="utf-8")).get(name)
        if value:
            return Secret(name, str(value))
    return None
