"""Shared command-line pieces: options, settings resolution, progress bars, error display."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress as RichProgress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from corpusforge.config import Settings, load_settings
from corpusforge.workspace import Workspace
from pipelines.core.progress import Progress

console = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="Configuration file (default: ./corpusforge.toml if present).")]
WorkspaceOpt = Annotated[Optional[Path], typer.Option("--workspace", "-w", help="Workspace directory (default: ./workspace, or the workspace.path setting).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a setting, e.g. --set sad.rules.min_words=5 (repeatable).")]
LanguagesOpt = Annotated[Optional[str], typer.Option("--languages", help="PolyRefuse languages, comma-separated codes (e.g. de,en; English is always included); sets polyrefuse.languages. Default: all 14.")]


def languages_override(languages: str | None) -> list[str]:
    """``--languages de,en`` as a ``--set polyrefuse.languages=[...]`` override (validated with the settings)."""
    if languages is None:
        return []
    import json

    return [f"polyrefuse.languages={json.dumps([c.strip() for c in languages.split(',') if c.strip()])}"]


def resolve(config: Path | None, workspace: Path | None, overrides: list[str] | None) -> tuple[Settings, Workspace]:
    settings = load_settings(config, overrides or [], workspace=workspace)
    return settings, Workspace.at(settings.workspace.path)


class PipelineBars(Progress):
    """Pipeline progress as rich bars: bytes for source steps, partitions for the others."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars: RichProgress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> "PipelineBars":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bars is not None:
            self.bars.stop()

    def _bars_for(self, unit: str) -> RichProgress:
        if self.bars is not None:
            self.bars.stop()
        columns = [TextColumn("[bold]{task.description:<20}"), BarColumn()]
        columns += [DownloadColumn()] if unit == "bytes" else [MofNCompleteColumn()]
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
        self.bars = RichProgress(*columns, console=self.console, transient=False)
        self.bars.start()
        return self.bars

    def step_started(self, step: str, total: int, unit: str) -> None:
        bars = self._bars_for(unit)
        self.tasks[step] = bars.add_task(step, total=total)

    def advance(self, step: str, n: int = 1) -> None:
        if self.bars is not None and step in self.tasks:
            self.bars.advance(self.tasks[step], n)

    def step_finished(self, step: str, skipped: bool, stats: dict[str, Any]) -> None:
        if skipped:
            self.console.print(f"[dim]{step:<20} up to date (inputs and settings unchanged)[/dim]")
        elif self.bars is not None and step in self.tasks:
            self.bars.update(self.tasks[step], completed=self.bars.tasks[self.tasks[step]].total)
