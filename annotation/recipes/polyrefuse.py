"""The PolyRefuse proofreading recipe: people check, fix or reject machine translations.

Input (:func:`proofreading_recipe`): one row per (prompt, language) with ``prompt_id``, ``lang``,
``split``, ``label``, ``source`` (the English prompt; null when unknown), ``translation``,
``back_translation`` (nullable), ``flags`` and ``flag_reasons`` (the automatic checks of
:mod:`pipelines.polyrefuse.checks`), ``backend`` and ``model`` (what translated it).

Items, id ``"<prompt_id>:<lang>"``:

* every **flagged** row (at least one check fired);
* an **audit sample** of the unflagged rows: in each language, ``ceil(audit_fraction * n)`` of
  its ``n`` unflagged rows, those with the smallest ``sha256("polyrefuse-audit:<seed>:<item id>")``.
  The sample depends only on the item ids and the seed (not on row order), a larger fraction
  takes a superset, and any positive fraction audits at least one row of every language. The
  audit measures what the checks miss.

Strata: ``lang`` and ``flagged`` (``yes`` / ``no``). Confidence: 0 for flagged items (the checks
doubt them), 1 for audit items, so lowest-confidence-first routing serves the flagged ones first.

Questions: ``verdict`` (accept / edit / reject, required), ``translation`` (a text question
prefilled with the machine translation, which the annotator corrects in place) and ``note``
(optional free text).

Pre-annotations: audit items get ``verdict: accept`` from the model ``polyrefuse-checks`` (score
1): it is what the checks claim about them, and it saves a click on the common case. Flagged
items get none: any verdict there would either contradict the flag (accept) or prejudge the fix
(edit / reject). The guideline tells annotators the pre-selection is only the checks' opinion;
even so, an "accept" pre-selection can anchor people, so the share of audit items edited or
rejected is best read as a lower bound of what the checks miss. The translation box needs no
pre-annotation: the labelling config prefills it from the task data.

Routing (:func:`route_by_language`): each language's items go only to that language's
annotators. Corrections (:func:`corrections_from_judgments`): the pulled judgments turned into
one decision per item, with provenance.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from annotation.routing import Assignment, RoutingOptions, RoutingPlan, route
from annotation.spec import AnnotationSpec, Display, Item, PreAnnotation, Question
from schemas.polyrefuse import LABEL

RECIPE_VERSION = "1"
SPEC_NAME = "polyrefuse-proofreading"
PREANNOTATION_MODEL = "polyrefuse-checks"
NO_BACK_TRANSLATION = "(none)"
NO_FLAGS = "(none: audit sample, every automatic check passed)"
UNKNOWN_SOURCE = "(unknown: no English row is known for this translation)"

REQUIRED_COLUMNS = (
    "prompt_id", "lang", "split", "label", "source", "translation", "back_translation",
    "flags", "flag_reasons", "backend", "model",
)

LANGUAGE_NAMES = {
    "en": "English", "de": "German", "es": "Spanish", "fr": "French", "it": "Italian", "nl": "Dutch",
    "pl": "Polish", "ja": "Japanese", "ko": "Korean", "zh": "Chinese", "ar": "Arabic", "th": "Thai",
    "ru": "Russian", "yo": "Yoruba",
}

VERDICTS = ("accept", "edit", "reject")
VERDICT_HINTS = {
    "accept": "correct and fluent as it is; the box is ignored",
    "edit": "close: fix it in the box below",
    "reject": "not a translation of the prompt, or too wrong to fix",
}

QUESTIONS = (
    Question("verdict", "single_choice", "Verdict", VERDICTS, required=True, hints=VERDICT_HINTS),
    Question("translation", "text", "Corrected translation (only read when the verdict is edit)", source="translation"),
    Question("note", "text", "Note (optional): why you rejected, or what was unclear"),
)

DISPLAY = (
    Display("header", "language", "Language"),
    Display("text", "source", "English source"),
    Display("text", "translation", "Machine translation", highlight=True),
    Display("text", "back_translation", "Back-translation into English (a hint, not proof)"),
    Display("text", "flags", "Automatic checks that fired"),
)

CORRECTION_SCHEMA = {
    "item_id": pl.String,
    "prompt_id": pl.String,
    "lang": pl.String,
    "status": pl.String,  # accepted | edited | rejected; null: not settled, see problem
    "translation_final": pl.String,  # null when rejected or not settled
    "translation_machine": pl.String,
    "annotator": pl.String,
    "annotated_at": pl.Datetime("us", "UTC"),
    "note": pl.String,
    "problem": pl.String,
}


def guideline() -> str:
    return files("annotation.recipes").joinpath("polyrefuse_guideline.md").read_text(encoding="utf-8")


def language_name(lang: str) -> str:
    return LANGUAGE_NAMES.get(lang, lang)


def item_id(prompt_id: str, lang: str) -> str:
    return f"{prompt_id}:{lang}"


def split_item_id(item: str) -> tuple[str, str]:
    """(prompt_id, lang) of an item id; prompt ids never hold a colon, languages neither."""
    prompt_id, _, lang = item.rpartition(":")
    return prompt_id, lang


def _audit_key(seed: int, item: str) -> str:
    return hashlib.sha256(f"polyrefuse-audit:{seed}:{item}".encode()).hexdigest()


def _audit_size(fraction: float, n: int) -> int:
    # round first: 0.05 * 100 is 5.000000000000001 in floating point, which ceil would make 6
    return min(n, math.ceil(round(fraction * n, 9)))


def _flags_text(item: str, flags: Sequence[str], reasons: Sequence[str]) -> str:
    if len(flags) != len(reasons):
        raise ValueError(f"PolyRefuse recipe: item {item!r} has {len(flags)} flag(s) but {len(reasons)} reason(s)")
    lines = []
    for flag, reason in zip(flags, reasons):
        # the checks start each reason with the flag's name; say it once
        lines.append(f"- {reason}" if reason.startswith(f"{flag}:") else f"- {flag}: {reason}")
    return "\n".join(lines)


def _label_name(label: Any) -> str:
    if isinstance(label, int) and 0 <= label < len(LABEL.names):
        return LABEL.names[label]
    return str(label)


def proofreading_recipe(rows: pl.DataFrame, *, audit_fraction: float = 0.05, seed: int = 0) -> AnnotationSpec:
    """The spec for proofreading the flagged translations of ``rows`` plus an audit sample.

    Raises ``ValueError`` when a column is missing, ``audit_fraction`` is outside [0, 1], a
    (prompt_id, lang) pair appears twice, or a row's flags and reasons differ in number.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"PolyRefuse recipe: rows lack column(s) {', '.join(missing)} (need {', '.join(REQUIRED_COLUMNS)})")
    if not 0 <= audit_fraction <= 1:
        raise ValueError(f"PolyRefuse recipe: audit_fraction must be in [0, 1], got {audit_fraction}")
    dupes = rows.group_by("prompt_id", "lang").len().filter(pl.col("len") > 1)
    if dupes.height:
        first = dupes.row(0, named=True)
        raise ValueError(
            f"PolyRefuse recipe: {dupes.height} (prompt_id, lang) pair(s) appear more than once, "
            f"e.g. {item_id(first['prompt_id'], first['lang'])!r} ({first['len']} rows); give one row per translation"
        )

    flagged: list[dict[str, Any]] = []
    unflagged: dict[str, list[dict[str, Any]]] = {}
    for r in rows.select(REQUIRED_COLUMNS).iter_rows(named=True):
        r["lang"] = str(r["lang"])  # a categorical comes back as a string anyway
        if r["flags"]:
            flagged.append(r)
        else:
            unflagged.setdefault(r["lang"], []).append(r)
    audit = []
    for lang, group in unflagged.items():
        group.sort(key=lambda r: _audit_key(seed, item_id(r["prompt_id"], r["lang"])))
        audit.extend(group[: _audit_size(audit_fraction, len(group))])

    chosen = sorted(flagged + audit, key=lambda r: (r["lang"], r["prompt_id"]))
    items: list[Item] = []
    pre: list[PreAnnotation] = []
    for r in chosen:
        iid = item_id(r["prompt_id"], r["lang"])
        is_flagged = bool(r["flags"])
        items.append(
            Item(
                id=iid,
                payload={
                    "prompt_id": r["prompt_id"],
                    "lang": r["lang"],
                    "language": language_name(r["lang"]),
                    "split": r["split"],
                    "label": _label_name(r["label"]),
                    "source": r["source"] if r["source"] is not None else UNKNOWN_SOURCE,
                    "translation": r["translation"] or "",  # the prefilled box needs a string
                    "back_translation": r["back_translation"] if r["back_translation"] else NO_BACK_TRANSLATION,
                    "flags": _flags_text(iid, r["flags"], r["flag_reasons"] or []) if is_flagged else NO_FLAGS,
                    "translated_by": f"{r['backend']}:{r['model']}",
                },
                strata={"lang": r["lang"], "flagged": "yes" if is_flagged else "no"},
                confidence=0.0 if is_flagged else 1.0,
            )
        )
        if not is_flagged:
            pre.append(PreAnnotation(iid, {"verdict": "accept"}, model=PREANNOTATION_MODEL, score=1.0))
    return AnnotationSpec(
        name=SPEC_NAME,
        title="PolyRefuse: proofread machine translations",
        version=RECIPE_VERSION,
        guideline=guideline(),
        display=DISPLAY,
        questions=QUESTIONS,
        items=tuple(items),
        preannotations=tuple(pre),
    )


# --------------------------------------------------------------------------- routing


def route_by_language(
    spec: AnnotationSpec,
    annotators_by_lang: Mapping[str, Sequence[str]],
    *,
    overlap: int = 1,
    seed: int = 0,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> RoutingPlan:
    """Every item of ``spec`` (minus ``exclude``) routed to ``overlap`` annotators of its language.

    Within a language, :func:`annotation.routing.route` balances the load (least loaded first)
    and serves flagged items before audit items; languages follow one another in code order. The
    plan's annotators are all the named ones, so a push makes an ``assigned: <name>`` tab each.

    Raises ``ValueError`` naming the language when a language of the items has no annotators
    or fewer than ``overlap``.
    """
    by_lang: dict[str, list[Item]] = {}
    for item in spec.items:
        if item.id in exclude:
            continue
        lang = item.strata.get("lang")
        if lang is None:
            raise ValueError(f"routing: item {item.id!r} has no 'lang' stratum; route_by_language needs the PolyRefuse recipe's items")
        by_lang.setdefault(lang, []).append(item)
    for lang, items in sorted(by_lang.items()):
        who = list(annotators_by_lang.get(lang) or ())
        if not who:
            raise ValueError(
                f"routing: language {lang!r} ({language_name(lang)}) has {len(items)} item(s) but no annotators; "
                f"add annotators for {lang!r} (have: {', '.join(sorted(k for k, v in annotators_by_lang.items() if v)) or 'none'})"
            )
        if len(set(who)) < overlap:
            raise ValueError(f"routing: overlap {overlap} needs at least {overlap} annotators for language {lang!r} ({language_name(lang)}), got {who}")

    assignments: list[Assignment] = []
    strata: dict[tuple[str, ...], int] = {}
    everyone: list[str] = []
    for lang in sorted(by_lang):
        who = tuple(dict.fromkeys(annotators_by_lang[lang]))
        everyone.extend(a for a in who if a not in everyone)
        sub = route(spec.with_items(tuple(by_lang[lang])), RoutingOptions(overlap=overlap, annotators=who, lowest_confidence_first=True, seed=seed))
        assignments.extend(sub.assignments)
        for a in sub.assignments:
            key = (lang, a.item.strata.get("flagged", ""))
            strata[key] = strata.get(key, 0) + 1
    # the options record who and how; the per-language restriction is in the assignments themselves
    opts = RoutingOptions(overlap=overlap, lowest_confidence_first=True, annotators=tuple(everyone), seed=seed)
    return RoutingPlan(tuple(assignments), opts, strata)


# --------------------------------------------------------------------------- corrections


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _same_text(a: str, b: str) -> bool:
    # a browser textarea may change line endings or add a trailing newline: not an edit
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def _decide(spec: AnnotationSpec, machine: str, answers: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(status, final translation, problem) of one judgment."""
    problems = spec.check_answers(answers)
    if problems:
        return None, None, "; ".join(problems)
    verdict = answers.get("verdict")
    if verdict is None:
        return None, None, "no verdict"
    if verdict == "accept":  # the box is ignored: a stray keystroke must not change the text
        return "accepted", machine, None
    if verdict == "reject":
        return "rejected", None, None
    text = answers.get("translation")
    if text is None or not text.strip():
        return None, None, "verdict edit with an empty translation: not applied"
    if _same_text(text, machine):
        return "accepted", machine, None
    return "edited", text.replace("\r\n", "\n").strip(), None


def _read_judgments(judgments: pl.DataFrame | Path) -> pl.DataFrame:
    if isinstance(judgments, pl.DataFrame):
        return judgments
    path = Path(judgments)
    return pl.read_parquet(path / "judgments.parquet" if path.is_dir() else path)


def corrections_from_judgments(spec: AnnotationSpec, judgments: pl.DataFrame | Path) -> pl.DataFrame:
    """One decision per judged item: the latest judgment of the item, whoever made it, wins.

    ``judgments`` is a pull's ``judgments.parquet`` (a DataFrame, the file, or its snapshot dir):
    ``item_id``, ``annotator``, ``updated_at`` (ISO 8601 text or datetime) and ``answers`` (JSON
    text or a dict); ``annotation_id`` breaks timestamp ties when present. The result has the
    columns of :data:`CORRECTION_SCHEMA`, one row per item, sorted by item id:

    * ``accept`` -> ``accepted``, ``translation_final`` is the machine text (the box is ignored);
    * ``edit`` with a changed text -> ``edited``, the new text (surrounding whitespace stripped);
      with the machine text unchanged -> ``accepted``;
    * ``reject`` -> ``rejected``, ``translation_final`` null;
    * an unusable latest judgment (``edit`` with an empty box, no verdict, answers the spec does
      not accept, an item the spec does not hold) -> ``status`` null and ``problem`` says why.
      It is not applied, and earlier judgments do not stand in for it: the latest word on the
      item is unclear, so the item needs another look.

    ``translation_machine`` always keeps the original; ``annotator`` and ``annotated_at`` (UTC)
    are those of the deciding judgment.
    """
    df = _read_judgments(judgments)
    missing = [c for c in ("item_id", "annotator", "updated_at", "answers") if c not in df.columns]
    if missing:
        raise ValueError(f"corrections: judgments lack column(s) {', '.join(missing)} (a pull's judgments.parquet has them)")
    payloads = {i.id: i.payload for i in spec.items}
    latest: dict[str, tuple[tuple, dict[str, Any]]] = {}
    for r in df.iter_rows(named=True):
        at = _timestamp(r["updated_at"]) or _timestamp(r.get("created_at"))
        key = (at or datetime.min.replace(tzinfo=timezone.utc), r.get("annotation_id") or 0)
        if r["item_id"] not in latest or key >= latest[r["item_id"]][0]:
            latest[r["item_id"]] = (key, {**r, "_at": at})
    out: dict[str, list[Any]] = {c: [] for c in CORRECTION_SCHEMA}
    for iid in sorted(latest):
        r = latest[iid][1]
        answers = r["answers"] if isinstance(r["answers"], dict) else json.loads(r["answers"])
        prompt_id, lang = split_item_id(iid)
        payload = payloads.get(iid)
        if payload is None:
            machine, (status, final, problem) = None, (None, None, f"item {iid!r} is not in spec {spec.name} (v{spec.version})")
        else:
            machine = payload["translation"]
            status, final, problem = _decide(spec, machine, answers)
        note = answers.get("note")
        row = {
            "item_id": iid, "prompt_id": prompt_id, "lang": lang, "status": status, "translation_final": final,
            "translation_machine": machine, "annotator": r["annotator"], "annotated_at": r["_at"],
            "note": note if isinstance(note, str) and note.strip() else None, "problem": problem,
        }
        for c in CORRECTION_SCHEMA:
            out[c].append(row[c])
    return pl.DataFrame(out, schema=CORRECTION_SCHEMA)
