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

from pathlib import Path

import polars as pl

from annotation.spec import AnnotationSpec, Answers
from corpusforge.config import Settings
from corpusforge.ops.annotate import AnnotationError, ProgressFn
from corpusforge.ops.review_rounds import PullOutcome, RoundPaths, latest_round, pull_corrections, push_routed, simulate_round
from corpusforge.workspace import Workspace

DATASET = "polyrefuse"
SOURCE_LANGUAGE = "en"
PATHS = RoundPaths(DATASET)
root, project_state = PATHS.root, PATHS.state


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
    report = push_routed(settings, spec, plan, project_state(settings), progress=progress)
    return report, plan


def pull(settings: Settings, *, progress: ProgressFn | None = None) -> PullOutcome:
    """Pull a snapshot of the verdicts and turn it into corrections (one decision per item)."""
    from annotation.recipes.polyrefuse import corrections_from_judgments

    return pull_corrections(settings, proofreading_spec(settings), project_state(settings), PATHS.corrections(settings),
                            corrections_from_judgments, progress=progress)


def latest_corrections(settings: Settings) -> Path | None:
    return latest_round(PATHS.corrections(settings))


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
    spec = proofreading_spec(settings)
    names = sorted({a for who in settings.annotation.polyrefuse.annotators.values() for a in who})
    if not names:
        raise AnnotationError("no proofreaders configured: set annotation.polyrefuse.annotators (per language)")
    return simulate_round(settings, spec, project_state(settings), simulated_verdicts(spec), names, seed=seed,
                          overlap=settings.annotation.polyrefuse.overlap, progress=progress)
