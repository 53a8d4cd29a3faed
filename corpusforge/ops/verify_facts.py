"""Fact verification end to end: push the doubtful facts of the current build, pull people's
verdicts as corrections plus a corrected facts table, and (for demos and tests) simulate
verifiers. The command line calls these.

Workspace layout (``<workspace>/annotation/facts/``)::

    label-studio/                     the verification project's state (annotation.store)
    corrections/<snapshot>/           of each pull, read-only:
        corrections.parquet           one decision per judged fact (annotation/recipes/facts.py)
        facts.jsonl                   the current build's facts with the corrections applied
        summary.json                  counts by status, unsettled items, what changed

The items are the doubtful facts of the current build (``corpusforge build facts``), routed to
the verifiers of their language (``annotation.facts.annotators``; other languages' items are open
to anyone). ``facts.jsonl`` is a facts table that ``pipelines/facts/facts.py: read_facts`` reads,
so the next count is ``corpusforge build facts --facts latest --corpus ...`` (or the file's path).
A pull applies every decision so far to the current build's facts; a build made from an earlier
pull's table already holds those fixes, and applying them again changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from annotation.spec import AnnotationSpec, Answers
from corpusforge.config import Settings
from corpusforge.ops.annotate import AnnotationError, ProgressFn
from corpusforge.ops.review_rounds import PullOutcome, RoundPaths, latest_round, pull_corrections, push_routed, simulate_round
from corpusforge.workspace import Workspace
from pipelines.facts.corrections import FACT_COLUMNS, apply_fact_corrections

DATASET = "facts"
FACTS_FILE = "facts.jsonl"
SIMULATED_VERIFIER = "sim-verifier"
PATHS = RoundPaths(DATASET)


def current_counts(settings: Settings) -> pl.DataFrame:
    """The counts table of the current build; an InputError saying how to make one when there is none."""
    from pipelines.facts.pipeline import read_candidate

    return read_candidate(Workspace.at(settings.workspace.path).stages(DATASET))["counts"]


def verification_spec(settings: Settings, counts: pl.DataFrame | None = None) -> AnnotationSpec:
    from annotation.recipes.facts import verification_recipe

    return verification_recipe(current_counts(settings) if counts is None else counts)


def push(settings: Settings, *, progress: ProgressFn | None = None):
    """Create or update the verification project with the routed items (idempotent, resumable)."""
    from annotation.recipes.facts import route_by_language

    spec = verification_spec(settings)
    plan = route_by_language(spec, settings.annotation.facts.annotators)
    return push_routed(settings, spec, plan, PATHS.state(settings), progress=progress), plan


def pull(settings: Settings, *, progress: ProgressFn | None = None) -> PullOutcome:
    """Pull a snapshot of the verdicts; write the corrections and the corrected facts table.

    The table is ``outcome.corrections.parent / FACTS_FILE``; ``outcome.added["applied"]`` says
    what the corrections changed (:meth:`pipelines.facts.corrections.CorrectionReport.to_json`).
    """
    from annotation.recipes.facts import corrections_from_judgments

    counts = current_counts(settings)

    def write_facts(corrections: pl.DataFrame, folder: Path) -> dict[str, Any]:
        corrected, report = apply_fact_corrections(counts.select(FACT_COLUMNS), corrections)
        corrected.write_ndjson(folder / FACTS_FILE)
        return {"facts": FACTS_FILE, "applied": report.to_json()}

    return pull_corrections(settings, verification_spec(settings, counts), PATHS.state(settings), PATHS.corrections(settings),
                            corrections_from_judgments, add_files=write_facts, progress=progress)


def latest_corrected_facts(settings: Settings) -> Path | None:
    """The corrected facts table of the latest pull (``facts.jsonl``), or None before the first."""
    return latest_round(PATHS.corrections(settings), FACTS_FILE)


def corrected_facts_path(settings: Settings) -> Path:
    """``--facts latest``: the latest corrected facts table, or an error that says how to make one."""
    found = latest_corrected_facts(settings)
    if found is None:
        raise AnnotationError(
            f"no corrected facts in {PATHS.corrections(settings)} yet: verify facts first "
            "(`corpusforge annotate push facts`, people verify, `corpusforge annotate pull facts`), "
            "or give --facts a KLAR folder or a facts table"
        )
    return found


# --------------------------------------------------------------------------- simulation


def simulated_verdicts(spec: AnnotationSpec) -> dict[str, Answers]:
    """What simulated verifiers answer: a ``same_forms`` item gets the English object of its index
    as its object, a ``zero_but_english`` item gets the English subject as an extra subject alias;
    every other item (and one where the English form changes nothing) is confirmed. The boxes
    come back whole, as from a form: the unchanged ones hold what was shown."""
    from annotation.recipes.facts import aliases_from_text, comparable

    verdicts: dict[str, Answers] = {}
    for item in spec.items:
        p = item.payload
        boxes = {k: p[k] for k in ("subject", "object", "subject_aliases", "object_aliases") if p[k]}
        fixed = dict(boxes)
        en_subject, en_object = p.get("en_subject"), p.get("en_object")
        if "same_forms" in p["reason_codes"] and en_object and comparable(en_object) != comparable(p["object"]):
            fixed["object"] = en_object
        aliases = aliases_from_text(p["subject_aliases"])
        if "zero_but_english" in p["reason_codes"] and en_subject and en_subject not in (p["subject"], *aliases):
            fixed["subject_aliases"] = "\n".join([*aliases, en_subject])
        if fixed == boxes:
            verdicts[item.id] = {"verdict": "confirm"}
        else:
            verdicts[item.id] = {"verdict": "fix", **fixed, "note": "simulated: the English form of the same fact"}
    return verdicts


def simulate(settings: Settings, *, seed: int = 0, progress: ProgressFn | None = None):
    """Every pushed item answered through the real API: by its assigned (simulated) verifier, and
    the open ones by the configured verifiers in turn (``sim-verifier`` when none are configured)."""
    spec = verification_spec(settings)
    names = sorted({a for who in settings.annotation.facts.annotators.values() for a in who}) or [SIMULATED_VERIFIER]
    return simulate_round(settings, spec, PATHS.state(settings), simulated_verdicts(spec), names, seed=seed, progress=progress)
