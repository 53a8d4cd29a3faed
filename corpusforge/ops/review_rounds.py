"""What the correction rounds share: people review machine output, a pull turns their verdicts
into a corrections table, and the next build reads that table as a file.

Used by PolyRefuse proofreading (:mod:`corpusforge.ops.proofread`) and fact verification
(:mod:`corpusforge.ops.verify_facts`). A round's corrections live in
``<corrections root>/<snapshot>/``: ``corrections.parquet``, ``summary.json`` and whatever the
round adds (the corrected facts table, for instance), written under a temporary name, made
read-only and renamed, so a reader never sees a partial folder and a pull never rewrites one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import polars as pl

from annotation.routing import RoutingPlan
from annotation.spec import AnnotationSpec, Answers
from annotation.store import ProjectState, make_read_only
from corpusforge.config import Settings
from corpusforge.ops.annotate import ProgressFn, connect, push_chunk_size, state_dir
from corpusforge.workspace import Workspace
from pipelines.core.fileio import atomic_write_json

BACKEND = "label-studio"
CORRECTIONS_FILE = "corrections.parquet"
SUMMARY_FILE = "summary.json"

Decide = Callable[[AnnotationSpec, Path], pl.DataFrame]  # (spec, snapshot dir) -> corrections (item_id, status, problem, ...)
AddFiles = Callable[[pl.DataFrame, Path], Mapping[str, Any]]  # (corrections, folder being written) -> summary entries


@dataclass(frozen=True)
class RoundPaths:
    """Where a dataset's round lives: ``<workspace>/annotation/<dataset>/`` with the project state
    in ``label-studio/`` (``argilla/`` with the Argilla backend) and the pulls' corrections in ``corrections/<snapshot>/``."""

    dataset: str

    def root(self, settings: Settings) -> Path:
        return Workspace.at(settings.workspace.path).annotation / self.dataset

    def state(self, settings: Settings) -> ProjectState:
        return ProjectState(self.root(settings) / state_dir(settings))

    def corrections(self, settings: Settings) -> Path:
        return self.root(settings) / "corrections"


@dataclass
class PullOutcome:
    report: Any  # the backend's PullReport
    corrections: Path
    counts: dict[str, int]  # items by status ("unsettled": no usable judgment)
    problems: list[tuple[str, str]]  # (item id, why its latest judgment is not applied)
    added: dict[str, Any] = field(default_factory=dict)  # what the round's add_files put into the summary


def push_routed(settings: Settings, spec: AnnotationSpec, plan: RoutingPlan, state: ProjectState, *, progress: ProgressFn | None = None):
    """Create or update the project of ``spec`` and import the plan's items (idempotent, resumable)."""
    return connect(settings).push(spec, plan, state, chunk_size=push_chunk_size(settings), progress=progress)


def pull_corrections(
    settings: Settings,
    spec: AnnotationSpec,
    state: ProjectState,
    corrections_root: Path,
    decide: Decide,
    *,
    add_files: AddFiles | None = None,
    progress: ProgressFn | None = None,
) -> PullOutcome:
    """Pull a snapshot of the verdicts, ``decide`` one correction per item, and commit the folder
    ``<corrections_root>/<snapshot>/`` (read-only) with the corrections, anything ``add_files``
    writes into it, and a summary."""
    report = connect(settings).pull(spec, state, progress=progress)
    corrections = decide(spec, report.snapshot)
    out = corrections_root / report.snapshot.name
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    corrections.write_parquet(tmp / CORRECTIONS_FILE)
    by_status = pl.col("status").fill_null("unsettled")
    counts = {str(k): v for k, v in corrections.group_by(by_status).len().sort("status").iter_rows()}
    problems = [(r["item_id"], r["problem"]) for r in corrections.filter(pl.col("problem").is_not_null()).iter_rows(named=True)]
    added = dict(add_files(corrections, tmp)) if add_files else {}
    atomic_write_json(tmp / SUMMARY_FILE, {
        "snapshot": report.snapshot.name, "items": corrections.height, "by_status": counts,
        "problems": [{"item_id": i, "problem": p} for i, p in problems], **added,
    })
    make_read_only(tmp)
    tmp.rename(out)
    return PullOutcome(report, out / CORRECTIONS_FILE, counts, problems, added)


def latest_round(corrections_root: Path, file: str = CORRECTIONS_FILE) -> Path | None:
    """``file`` of the newest committed corrections folder under ``corrections_root``, or None."""
    if not corrections_root.exists():
        return None
    done = sorted(p for p in corrections_root.iterdir() if not p.name.startswith(".") and (p / file).exists())
    return done[-1] / file if done else None


def simulate_round(
    settings: Settings,
    spec: AnnotationSpec,
    state: ProjectState,
    truth: Mapping[str, Answers],
    names: Sequence[str],
    *,
    seed: int = 0,
    overlap: int = 1,
    progress: ProgressFn | None = None,
):
    """Simulated reviewers (``names``) answer every pushed item with ``truth``, without noise,
    through the real API; resumable (see :mod:`annotation.simulate`)."""
    from annotation.simulate import simulate

    return simulate(connect(settings), spec, state, truth, list(names), noise=0.0, seed=seed, overlap=overlap, progress=progress)
