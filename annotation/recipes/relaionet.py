"""The reLAIONet proofreading recipe: people check the ImageNet class that a LAION caption gave an image.

Input (:func:`proofreading_recipe`):

* ``rows``: CANDIDATES rows (``schemas/relaionet.py``) with at least ``sample_id``, ``caption``,
  ``caption_class`` (the class the caption matched: what people are asked to confirm; it stays
  the same after a rebuild that applied corrections, so a second push is a no-op), ``text_in_image``
  and ``ocr_text``; ``text_similarity`` when present orders the queue (least similar first);
* ``image_paths``: ``sample_id -> absolute path`` of the image file (the backend serves it: Label
  Studio through a local-files storage);
* ``glosses``: the WordNet gloss of each class id (1,000 strings in class id order).

Items, id ``sample_id``: the image, the caption, the proposed class ("name (wnid): gloss") and what
OCR found written in the image. Strata: ``proofreaders`` = ``double`` for the double-proofread
share, ``single`` otherwise. The double share is ``ceil(double_fraction * n)`` items, those with
the smallest ``sha256("relaionet-double:<seed>:<sample_id>")``: it depends only on the ids and the
seed (not on row order), and a larger fraction takes a superset.

Questions: ``verdict`` (confirm / other class / unusable, required), ``class`` (the right class
among the 1,000 names: a searchable single choice, shown when the verdict is "other class"),
``reason`` (why unusable: not a photo, text in image, unsafe, other; shown when unusable) and
``note`` (optional text).

Routing (:func:`route_double`): double items to two proofreaders, the others to one, the load
balanced. Corrections (:func:`corrections_from_judgments`) and agreement
(:func:`agreement_summary`): see there.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from annotation.routing import RoutingOptions, RoutingPlan, route
from annotation.spec import AnnotationSpec, Display, Item, Question
from schemas.relaionet import N_CLASSES, UNUSABLE_REASONS, class_names, wnids

RECIPE_VERSION = "1"
SPEC_NAME = "relaionet-proofreading"

CONFIRM, OTHER_CLASS, UNUSABLE = "confirm", "other class", "unusable"
VERDICTS = (CONFIRM, OTHER_CLASS, UNUSABLE)
VERDICT_HINTS = {
    CONFIRM: "the image shows the proposed class",
    OTHER_CLASS: "it shows another ImageNet class: pick it below",
    UNUSABLE: "no photo of one class, the class only written, or unsafe: say why below",
}
# what the annotator reads -> the schema's unusable_reason
REASONS = dict(zip(("not a photo", "text in image", "unsafe", "other"), UNUSABLE_REASONS))
REASON_HINTS = {
    "not a photo": "drawing, render, screenshot, diagram, product mock-up",
    "text in image": "the class is only written (logo, label, caption), not shown",
    "unsafe": "sexual, violent or otherwise not fit to release",
    "other": "say what in the note",
}
NO_TEXT = {"no": "no text naming the class was found", "not_checked": "not checked (no OCR ran)"}

DISPLAY = (
    Display("image", "image", "Image"),
    Display("text", "caption", "Caption"),
    Display("text", "proposed", "Proposed class (from the caption)", highlight=True),
    Display("text", "text_in_image", "Text in the image (OCR)"),
)

REQUIRED_COLUMNS = ("sample_id", "caption", "caption_class", "text_in_image", "ocr_text")

STATUSES = ("accepted", "relabelled", "unusable", "disputed")
CORRECTION_SCHEMA = {
    "item_id": pl.String,  # = sample_id (the rounds' shared plumbing reads item_id)
    "sample_id": pl.String,
    "status": pl.String,  # accepted | relabelled | unusable | disputed; null: not settled, see problem
    "label": pl.Int64,  # the final class id (accepted: the proposed one); null unless accepted or relabelled
    "proposed_label": pl.Int64,  # the caption's class, as proofread
    "unusable_reason": pl.String,  # schemas.relaionet.UNUSABLE_REASONS
    "annotators": pl.List(pl.String),  # whose judgments count, in annotator order
    "decisions": pl.List(pl.String),  # each one's decision (see decision_key), aligned with annotators
    "double": pl.Boolean,  # routed to two proofreaders
    "agree": pl.Boolean,  # the decisions agree (null with fewer than two)
    "annotated_at": pl.String,  # latest of the counted judgments (as the server gave it)
    "note": pl.String,
    "problem": pl.String,  # why the item is not settled (or, disputed, what the proofreaders said)
}


def guideline() -> str:
    return files("annotation.recipes").joinpath("relaionet_guideline.md").read_text(encoding="utf-8")


def questions() -> tuple[Question, ...]:
    return (
        Question("verdict", "single_choice", "Does the image show the proposed class?", VERDICTS, required=True, hints=VERDICT_HINTS),
        Question("class", "single_choice", "The class it shows (type to search the 1,000 classes)", class_names(),
                 searchable=True, shown_when=("verdict", OTHER_CLASS)),
        Question("reason", "single_choice", "Why is it unusable?", tuple(REASONS), hints=REASON_HINTS, shown_when=("verdict", UNUSABLE)),
        Question("note", "text", "Note (optional)"),
    )


def _double_key(seed: int, item: str) -> str:
    return hashlib.sha256(f"relaionet-double:{seed}:{item}".encode()).hexdigest()


def double_sample(ids: Sequence[str], fraction: float, seed: int) -> set[str]:
    """The ids proofread twice: ``ceil(fraction * n)`` of them, by seeded hash."""
    # round first: 0.05 * 100 is 5.000000000000001 in floating point, which ceil would make 6
    size = min(len(ids), math.ceil(round(fraction * len(ids), 9)))
    return set(sorted(ids, key=lambda i: _double_key(seed, i))[:size])


def proposed_text(class_id: int, glosses: Sequence[str]) -> str:
    return f"{class_names()[class_id]} ({wnids()[class_id]}): {glosses[class_id]}"


def _ocr_text(flag: str, text: str | None) -> str:
    if flag == "yes":
        return f"YES: the class name is written in the image (OCR read: {text or '?'!r}). Does it show the thing, or only the word?"
    return NO_TEXT.get(flag, flag)


def proofreading_recipe(
    rows: pl.DataFrame,
    image_paths: Mapping[str, str | Path],
    glosses: Sequence[str],
    *,
    double_fraction: float = 0.2,
    seed: int = 0,
) -> AnnotationSpec:
    """The spec for proofreading every row of ``rows``.

    Raises ``ValueError`` when a column is missing, ``double_fraction`` is outside [0, 1], a
    sample id appears twice, a row has no image path or an out-of-range class, or ``glosses``
    does not hold one gloss per class.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"reLAIONet recipe: rows lack column(s) {', '.join(missing)} (need {', '.join(REQUIRED_COLUMNS)})")
    if not 0 <= double_fraction <= 1:
        raise ValueError(f"reLAIONet recipe: double_fraction must be in [0, 1], got {double_fraction}")
    if len(glosses) != N_CLASSES:
        raise ValueError(f"reLAIONet recipe: need {N_CLASSES} glosses (one per class id), got {len(glosses)}")
    ids = rows["sample_id"].to_list()
    if len(set(ids)) != len(ids):
        raise ValueError("reLAIONet recipe: sample ids appear more than once; give one row per image")
    double = double_sample(ids, double_fraction, seed)
    similarity = rows["text_similarity"].to_list() if "text_similarity" in rows.columns else [None] * rows.height
    items = []
    for r, score in zip(rows.select(REQUIRED_COLUMNS).iter_rows(named=True), similarity):
        sid, cls = r["sample_id"], r["caption_class"]
        if sid not in image_paths:
            raise ValueError(f"reLAIONet recipe: no image path for sample {sid!r}")
        if cls is None or not 0 <= cls < N_CLASSES:
            raise ValueError(f"reLAIONet recipe: sample {sid!r} has class {cls!r}, outside 0..{N_CLASSES - 1}")
        payload = {
            "image": str(image_paths[sid]),
            "caption": r["caption"] or "",
            "proposed": proposed_text(cls, glosses),
            "proposed_label": int(cls),
            "text_in_image": _ocr_text(r["text_in_image"], r["ocr_text"]),
        }
        strata = {"proofreaders": "double" if sid in double else "single"}
        items.append(Item(sid, payload, strata, confidence=score))
    return AnnotationSpec(
        name=SPEC_NAME,
        title="reLAIONet: proofread image labels",
        version=RECIPE_VERSION,
        guideline=guideline(),
        display=DISPLAY,
        questions=questions(),
        items=tuple(items),
    )


# --------------------------------------------------------------------------- routing


def route_double(spec: AnnotationSpec, annotators: Sequence[str], *, seed: int = 0) -> RoutingPlan:
    """Double items to two of ``annotators``, the others to one; least similar captions first.

    Raises ``ValueError`` when there are no annotators, or double items and fewer than two.
    """
    who = tuple(dict.fromkeys(annotators))
    double = [i for i in spec.items if i.strata.get("proofreaders") == "double"]
    single = [i for i in spec.items if i.strata.get("proofreaders") != "double"]
    if not who:
        raise ValueError(f"routing: {len(spec.items)} image(s) but no proofreaders")
    if double and len(who) < 2:
        raise ValueError(f"routing: {len(double)} image(s) are proofread twice, which needs at least 2 proofreaders, got {list(who)}")
    assignments = []
    for items, overlap in ((double, 2), (single, 1)):
        if items:
            sub = route(spec.with_items(tuple(items)), RoutingOptions(overlap=overlap, annotators=who, lowest_confidence_first=True, seed=seed))
            assignments.extend(sub.assignments)
    strata = {(k,): n for k, n in (("double", len(double)), ("single", len(single))) if n}
    return RoutingPlan(tuple(assignments), RoutingOptions(lowest_confidence_first=True, annotators=who, seed=seed), strata)


# --------------------------------------------------------------------------- corrections


def decision_key(status: str, label: int | None) -> str:
    """One judgment's decision on the verdict and class: ``accepted``, ``relabelled:<class id>``, ``unusable``."""
    return f"relabelled:{label}" if status == "relabelled" else status


def _decide(spec: AnnotationSpec, proposed: int, answers: Mapping[str, Any]) -> tuple[str | None, int | None, str | None, str | None]:
    """(status, label, unusable reason, problem) of one judgment."""
    problems = spec.check_answers(answers)
    if problems:
        return None, None, None, "; ".join(problems)
    verdict = answers.get("verdict")
    if verdict is None:
        return None, None, None, "no verdict"
    if verdict == CONFIRM:
        return "accepted", proposed, None, None
    if verdict == UNUSABLE:
        return "unusable", None, REASONS[answers.get("reason") or "other"], None
    name = answers.get("class")
    if not name:
        return None, None, None, "verdict 'other class' without a class"
    label = class_names().index(name)
    return ("accepted" if label == proposed else "relabelled"), label, None, None


def _latest_per_annotator(judgments: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """item -> the latest judgment of each annotator (an annotator's update wins), annotators sorted."""
    missing = [c for c in ("item_id", "annotator", "updated_at", "answers") if c not in judgments.columns]
    if missing:
        raise ValueError(f"corrections: judgments lack column(s) {', '.join(missing)} (a pull's judgments.parquet has them)")
    order = [c for c in ("updated_at", "annotation_id") if c in judgments.columns]
    latest = judgments.sort(order).unique(subset=["item_id", "annotator"], keep="last").sort("item_id", "annotator")
    by_item: dict[str, list[dict[str, Any]]] = {}
    for r in latest.iter_rows(named=True):
        by_item.setdefault(r["item_id"], []).append(r)
    return by_item


def _settle(spec: AnnotationSpec, item: Item | None, iid: str, judged: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "item_id": iid, "sample_id": iid, "status": None, "label": None, "proposed_label": None, "unusable_reason": None,
        "annotators": [j["annotator"] for j in judged], "decisions": [], "double": None, "agree": None,
        "annotated_at": max(str(j["updated_at"] or "") for j in judged) or None, "note": None, "problem": None,
    }
    if item is None:
        row["problem"] = f"item {iid!r} is not in spec {spec.name} (v{spec.version})"
        return row
    proposed = int(item.payload["proposed_label"])
    row.update(proposed_label=proposed, double=item.strata.get("proofreaders") == "double")
    decided, problems, notes = [], [], []
    for j in judged:
        answers = j["answers"] if isinstance(j["answers"], dict) else json.loads(j["answers"])
        status, label, reason, problem = _decide(spec, proposed, answers)
        if problem:
            problems.append(f"{j['annotator']}: {problem}")
        decided.append((status, label, reason))
        note = answers.get("note")
        if isinstance(note, str) and note.strip():
            notes.append(f"{j['annotator']}: {note.strip()}")
    row["note"] = "\n".join(notes) or None
    if problems:  # the latest word of someone is unclear: the item needs another look
        row["problem"] = "; ".join(problems)
        return row
    row["decisions"] = [decision_key(s, label) for s, label, _ in decided]
    if len(decided) >= 2:
        row["agree"] = len(set(row["decisions"])) == 1
    if row["double"] and len(decided) < 2:
        row["problem"] = f"proofread by {len(decided)} of 2: waiting for the second proofreader"
        return row
    if len(set(row["decisions"])) > 1:
        row["status"] = "disputed"
        row["problem"] = "proofreaders disagree: " + "; ".join(f"{a}: {d}" for a, d in zip(row["annotators"], row["decisions"]))
        return row
    status, label, _ = decided[0]
    reasons = sorted({r for _, _, r in decided if r})
    row.update(status=status, label=label, unusable_reason=reasons[0] if len(reasons) == 1 else ("other" if reasons else None))
    return row


def corrections_from_judgments(spec: AnnotationSpec, judgments: pl.DataFrame | Path) -> pl.DataFrame:
    """One decision per judged image, with provenance (columns of :data:`CORRECTION_SCHEMA`, sorted by id).

    ``judgments`` is a pull's ``judgments.parquet`` (a DataFrame, the file, or its snapshot dir).
    The latest judgment of each annotator counts. Per judgment: ``confirm`` -> accepted with the
    proposed class; ``other class`` with a class -> relabelled (accepted when the class is the
    proposed one); ``unusable`` -> unusable with the reason (``other`` when none was given).

    * all counted judgments decide the same verdict and class -> that status (an unusable item's
      reason is the common one, ``other`` when they differ);
    * they differ -> ``disputed`` (not released), ``problem`` lists who said what;
    * a double item with one judgment so far, an unusable judgment (``other class`` without a
      class, answers the spec does not accept), an item the spec does not hold -> ``status``
      null and ``problem`` says why: not applied.
    """
    if not isinstance(judgments, pl.DataFrame):
        path = Path(judgments)
        judgments = pl.read_parquet(path / "judgments.parquet" if path.is_dir() else path)
    items = {i.id: i for i in spec.items}
    rows = [_settle(spec, items.get(iid), iid, judged) for iid, judged in sorted(_latest_per_annotator(judgments).items())]
    return pl.DataFrame(rows, schema=CORRECTION_SCHEMA)


def agreement_summary(corrections: pl.DataFrame) -> dict[str, Any]:
    """Agreement on the verdict and class over the images with two or more usable judgments.

    Percent agreement (share of such images whose judgments all agree), Krippendorff's alpha
    (nominal) and Fleiss' kappa. Cohen's kappa is not given: the two proofreaders of an image
    are any two of the pool, not one fixed pair, which Fleiss' kappa and alpha allow for.
    Coefficients are None when undefined (no such image, or one decision everywhere).
    """
    from annotation.agreement import _none_if_nan, fleiss_kappa, krippendorff_alpha

    units = {
        r["item_id"]: dict(zip(r["annotators"], r["decisions"]))
        for r in corrections.iter_rows(named=True) if len(r["decisions"] or []) >= 2
    }
    categories = sorted({d for by in units.values() for d in by.values()})
    agreeing = sum(len(set(by.values())) == 1 for by in units.values())
    return {
        "items": len(units),
        "agreeing": agreeing,
        "percent_agreement": round(100 * agreeing / len(units), 2) if units else None,
        "krippendorff_alpha": _none_if_nan(krippendorff_alpha(units)),
        "fleiss_kappa": _none_if_nan(fleiss_kappa(units, categories).kappa),
    }
