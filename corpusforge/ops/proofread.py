"""PolyRefuse proofreading end to end: push the doubtful translations, pull people's verdicts as
corrections, and (for demos and tests) simulate proofreaders. The command line calls these.

Workspace layout (``<workspace>/annotation/polyrefuse/``)::

    label-studio/                     the proofreading project's state (annotation.store)
    corrections/<snapshot>/           corrections.parquet and summary.json of each pull

The items are the current build's translations (``corpusforge build polyrefuse``): every flagged
row plus an audit sample of the others (``annotation.polyrefuse.audit_fraction``), routed to the
proofreaders of their language (``annotation.polyrefuse.annotators``). The machine text shown is
the text the checks judged (for a row already corrected, the original kept in
``instruction_machine``), so a rebuild with corrections applied pushes the same items again, which
is a no-op. ``corpusforge build polyrefuse --corrections latest`` applies the latest pull.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from annotation.spec import AnnotationSpec, Answers
from annotation.store import ProjectState, make_read_only
from corpusforge.config import Settings
from corpusforge.ops.annotate import AnnotationError, ProgressFn, connect
from corpusforge.workspace import Workspace
from pipelines.core.fileio import atomic_write_json

DATASET = "polyrefuse"
BACKEND = "label-studio"
SOURCE_LANGUAGE = "en"


def root(settings: Settings) -> Path:
    return Workspace.at(settings.workspace.path).annotation / DATASET


def project_state(settings: Settings) -> ProjectState:
    return ProjectState(root(settings) / BACKEND)


def proofreading_rows(settings: Settings) -> pl.DataFrame:
    """The current build's translations in the recipe's input columns."""
    from pipelines.polyrefuse.pipeline import read_candidate

    rows = read_candidate(Workspace.at(settings.workspace.path).stages(DATASET))["rows"]
    languages = [lang for lang in settings.polyrefuse.languages if lang != SOURCE_LANGUAGE]
    return rows.filter(pl.col("lang").is_in(languages)).select(
        "prompt_id", "lang", "split", "label", pl.col("instruction_en").alias("source"),
        pl.coalesce("instruction_machine", "instruction").alias("translation"),
        "back_translation", "flags", "flag_reasons", "backend", "model",
    )


def proofreading_spec(settings: Settings) -> AnnotationSpec:
    from annotation.recipes.polyrefuse import proofreading_recipe

    o = settings.annotation.polyrefuse
    return proofreading_recipe(proofreading_rows(settings), audit_fraction=o.audit_fraction, seed=o.seed)


def push(settings: Settings, *, progress: ProgressFn | None = None):
    """Create or update the proofreading project with the routed items (idempotent, resumable)."""
    from annotation.recipes.polyrefuse import route_by_language

    spec = proofreading_spec(settings)
    o = settings.annotation.polyrefuse
    try:
        plan = route_by_language(spec, o.annotators, overlap=o.overlap, seed=o.seed)
    except ValueError as exc:
        raise AnnotationError(f"{exc}: set annotation.polyrefuse.annotators, e.g. --set 'annotation.polyrefuse.annotators={{de = [\"anna\"]}}'") from None
    backend = connect(settings)
    report = backend.push(spec, plan, project_state(settings), chunk_size=settings.annotation.label_studio.chunk_size, progress=progress)
    return report, plan


@dataclass
class PullOutcome:
    report: Any  # the backend's PullReport
    corrections: Path
    counts: dict[str, int]
    problems: list[tuple[str, str]]  # (item id, why its latest judgment is not applied)


def pull(settings: Settings, *, progress: ProgressFn | None = None) -> PullOutcome:
    """Pull a snapshot of the verdicts and turn it into corrections (one decision per item)."""
    from annotation.recipes.polyrefuse import corrections_from_judgments

    spec = proofreading_spec(settings)
    report = connect(settings).pull(spec, project_state(settings), progress=progress)
    corrections = corrections_from_judgments(spec, report.snapshot)
    out = root(settings) / "corrections" / report.snapshot.name
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    corrections.write_parquet(tmp / "corrections.parquet")
    counts = {str(k): v for k, v in corrections.group_by(pl.col("status").fill_null("unsettled")).len().sort("status").iter_rows()}
    problems = [(r["item_id"], r["problem"]) for r in corrections.filter(pl.col("problem").is_not_null()).iter_rows(named=True)]
    atomic_write_json(tmp / "summary.json", {
        "snapshot": report.snapshot.name, "items": corrections.height, "by_status": counts,
        "problems": [{"item_id": i, "problem": p} for i, p in problems],
    })
    make_read_only(tmp)
    tmp.rename(out)
    return PullOutcome(report, out / "corrections.parquet", counts, problems)


def latest_corrections(settings: Settings) -> Path | None:
    d = root(settings) / "corrections"
    if not d.exists():
        return None
    done = sorted(p for p in d.iterdir() if not p.name.startswith(".") and (p / "corrections.parquet").exists())
    return done[-1] / "corrections.parquet" if done else None


# --------------------------------------------------------------------------- simulation


def _toggle_full_stop(text: str) -> str:
    """A simulated proofreader's edit: drop the final full stop, or add one (always a change)."""
    stripped = text.rstrip()
    return stripped[:-1].rstrip() if stripped.endswith(".") else stripped + "."


def simulated_verdicts(spec: AnnotationSpec) -> dict[str, Answers]:
    """What simulated proofreaders answer: audit items are accepted; a flagged item with an empty
    translation, or one the checks say is untranslated or in another language, is rejected; the
    other flagged items are edited (the edit drops or adds the final full stop: a visible,
    checkable change, not a better translation)."""
    verdicts: dict[str, Answers] = {}
    for item in spec.items:
        text = item.payload["translation"] or ""
        flags = item.payload.get("flags", "")
        if item.strata.get("flagged") == "no":
            verdicts[item.id] = {"verdict": "accept"}
        elif not text.strip() or "untranslated:" in flags or "language:" in flags:
            verdicts[item.id] = {"verdict": "reject", "note": "simulated: not a translation of the prompt"}
        else:
            verdicts[item.id] = {"verdict": "edit", "translation": _toggle_full_stop(text)}
    return verdicts


def simulate(settings: Settings, *, seed: int = 0, progress: ProgressFn | None = None):
    """Every pushed item answered by its assigned (simulated) proofreaders through the real API."""
    from annotation.simulate import simulate as run

    spec = proofreading_spec(settings)
    names = sorted({a for who in settings.annotation.polyrefuse.annotators.values() for a in who})
    if not names:
        raise AnnotationError("no proofreaders configured: set annotation.polyrefuse.annotators (per language)")
    truth = simulated_verdicts(spec)
    return run(connect(settings), spec, project_state(settings), truth, names, noise=0.0, seed=seed,
               overlap=settings.annotation.polyrefuse.overlap, progress=progress)
