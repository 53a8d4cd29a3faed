"""The fact verification recipe: people confirm or fix the surface forms of doubtful facts.

Input (:func:`verification_recipe`): the ``counts`` table of a fact-frequency build
(:data:`schemas.facts.COUNTS`: ``lang``, ``relation``, ``index``, ``subject``, ``object``, the alias
lists and the three document counts; ``fact_id`` is not needed).

Items, id ``"<lang>:<index>"``, sorted by language then index: the facts with at least one reason
to doubt them, each with all of its reasons, in this order:

* ``same_forms``: subject and object are the same form once NFKC-normalised, casefolded and
  stripped (what the matcher compares), so every document mentioning one mentions "both";
* ``empty_form``: the subject or the object has nothing but white space and invisible format
  characters, so it can match nothing (a facts reader rejects truly empty forms; a doctored or
  generated table may still hold one);
* ``zero_but_english`` (with ``english_zero_rule``, for languages other than English): no document
  mentions both here, while the English fact with the same index co-occurs in at least one. The
  form, not the fact, is then the likely culprit: a suffix glued to a stem, another
  transliteration.

Strata: ``lang`` and ``reason`` (the item's reasons joined with ``+``). No confidence and no
pre-annotation: the reasons are shown instead, and the boxes come prefilled from the task data.

Questions: ``verdict`` (confirm / fix, required); ``subject`` and ``object`` (text, prefilled with
the current forms, corrected in place); ``subject_aliases`` and ``object_aliases`` (text, one alias
per line, prefilled); ``note``.

Routing (:func:`route_by_language`): a language with named verifiers sends its items to them,
the other languages' items are open to anyone. Corrections (:func:`corrections_from_judgments`):
the latest judgment of each item as one decision, with provenance; applying them to a facts
table is :func:`pipelines.facts.corrections.apply_fact_corrections`.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from annotation.routing import RoutingOptions, RoutingPlan, route
from annotation.spec import AnnotationSpec, Display, Item, Question

RECIPE_VERSION = "1"
SPEC_NAME = "facts-verification"
ENGLISH = "en"
REASONS = ("same_forms", "empty_form", "zero_but_english")
FORMS = ("subject", "object")
ALIAS_FIELDS = ("subject_aliases", "object_aliases")
REQUIRED_COLUMNS = (
    "lang", "relation", "index", "subject", "object", "subject_aliases", "object_aliases",
    "subject_docs", "object_docs", "cooccurrence_docs",
)
NO_ENGLISH = "(no English fact with this index)"
NO_ALIASES = "(none)"

LANGUAGE_NAMES = {
    "en": "English", "fr": "French", "es": "Spanish", "ar": "Arabic", "zh": "Chinese", "ru": "Russian",
    "ja": "Japanese", "tr": "Turkish", "uk": "Ukrainian", "ca": "Catalan", "ko": "Korean", "el": "Greek",
}

VERDICTS = ("confirm", "fix")
VERDICT_HINTS = {
    "confirm": "the forms and aliases are right as they are; the boxes are ignored",
    "fix": "correct a form, or add or remove aliases, in the boxes below",
}

QUESTIONS = (
    Question("verdict", "single_choice", "Verdict", VERDICTS, required=True, hints=VERDICT_HINTS),
    Question("subject", "text", "Subject (only read for a fix)", source="subject"),
    Question("object", "text", "Object (only read for a fix)", source="object"),
    Question("subject_aliases", "text", "Subject aliases, one per line (only read for a fix)", source="subject_aliases"),
    Question("object_aliases", "text", "Object aliases, one per line (only read for a fix)", source="object_aliases"),
    Question("note", "text", "Note (optional): what was wrong, or why you kept it"),
)

DISPLAY = (
    Display("header", "language", "Language"),
    Display("text", "relation", "Relation"),
    Display("text", "fact", "Fact (subject -> object)", highlight=True),
    Display("text", "aliases", "Aliases (any of them counts as the form)"),
    Display("text", "counts", "Documents of the corpus"),
    Display("text", "english", "The same fact in English"),
    Display("text", "reasons", "Why this fact is doubtful"),
)

CORRECTION_SCHEMA = {
    "item_id": pl.String,
    "lang": pl.String,
    "index": pl.Int64,
    "status": pl.String,  # confirmed | fixed; null: not settled, see problem
    # fixed: the verified value where it differs from what was shown; null: keep the table's value
    "subject": pl.String,
    "object": pl.String,
    "subject_aliases": pl.List(pl.String),
    "object_aliases": pl.List(pl.String),
    # what the verifier saw; null when the item is not in the spec any more (see corrections_from_judgments)
    "subject_before": pl.String,
    "object_before": pl.String,
    "subject_aliases_before": pl.List(pl.String),
    "object_aliases_before": pl.List(pl.String),
    "reasons": pl.List(pl.String),
    "annotator": pl.String,
    "annotated_at": pl.Datetime("us", "UTC"),
    "note": pl.String,
    "problem": pl.String,
}


def guideline() -> str:
    return files("annotation.recipes").joinpath("facts_guideline.md").read_text(encoding="utf-8")


def item_id(lang: str, index: int) -> str:
    return f"{lang}:{index}"


def parse_item_id(item: str) -> tuple[str, int] | None:
    """(lang, index) of an item id, or None when it is not ``<lang>:<integer>``."""
    lang, sep, index = item.rpartition(":")
    if not sep or not lang or not index.lstrip("+-").isdigit():
        return None
    return lang, int(index)


def comparable(form: str) -> str:
    """A form as the matcher compares it: NFKC, casefolded, stripped."""
    return unicodedata.normalize("NFKC", form).casefold().strip()


def is_blank(form: str | None) -> bool:
    """Nothing but white space and invisible format characters (zero-width space, BOM...)."""
    return form is None or all(c.isspace() or unicodedata.category(c) == "Cf" for c in form)


def reasons_of(fact: Mapping[str, Any], english: Mapping[str, Any] | None, *, english_zero_rule: bool = True) -> list[str]:
    """The reasons to doubt one fact (a counts row), given the English row of its index (or None)."""
    found = []
    if not is_blank(fact["subject"]) and comparable(fact["subject"]) == comparable(fact["object"]):
        found.append("same_forms")
    if is_blank(fact["subject"]) or is_blank(fact["object"]):
        found.append("empty_form")
    if (
        english_zero_rule and fact["lang"] != ENGLISH and english is not None
        and fact["cooccurrence_docs"] == 0 and english["cooccurrence_docs"] > 0
    ):
        found.append("zero_but_english")
    return found


def _reason_line(reason: str, fact: Mapping[str, Any], english: Mapping[str, Any] | None) -> str:
    if reason == "same_forms":
        return f"- same_forms: subject and object are both {fact['subject']!r}: a mention of one counts as a mention of both"
    if reason == "empty_form":
        blank = [f for f in FORMS if is_blank(fact[f])]
        return f"- empty_form: the {' and the '.join(blank)} is blank: it can match no document"
    assert english is not None
    return (
        f"- zero_but_english: no document mentions both here, while {english['cooccurrence_docs']:,} do in English: "
        "is a form too narrow (a suffix, another spelling or transliteration)?"
    )


def _aliases_text(fact: Mapping[str, Any]) -> str:
    return "\n".join(
        f"{form}: {' | '.join(fact[field]) if fact[field] else NO_ALIASES}" for form, field in zip(FORMS, ALIAS_FIELDS)
    )


def _payload(fact: Mapping[str, Any], english: Mapping[str, Any] | None, reasons: Sequence[str]) -> dict[str, Any]:
    lang = fact["lang"]
    if english is None:
        english_text = NO_ENGLISH
    else:
        english_text = f"{english['subject']} -> {english['object']} (both in {english['cooccurrence_docs']:,} documents)"
    return {
        "lang": lang,
        "language": f"{LANGUAGE_NAMES.get(lang, lang)} ({lang})",
        "relation": fact["relation"],
        "index": fact["index"],
        "fact": f"{fact['subject']} -> {fact['object']}",
        # the boxes are prefilled from these four
        "subject": fact["subject"] or "",
        "object": fact["object"] or "",
        "subject_aliases": "\n".join(fact["subject_aliases"]),
        "object_aliases": "\n".join(fact["object_aliases"]),
        "aliases": _aliases_text(fact),
        "counts": (
            f"subject in {fact['subject_docs']:,}, object in {fact['object_docs']:,}, "
            f"both in {fact['cooccurrence_docs']:,}"
        ),
        "english": english_text,
        "en_subject": english["subject"] if english is not None else None,
        "en_object": english["object"] if english is not None else None,
        "reason_codes": list(reasons),
        "reasons": "\n".join(_reason_line(r, fact, english) for r in reasons),
    }


def verification_recipe(counts: pl.DataFrame, *, english_zero_rule: bool = True) -> AnnotationSpec:
    """The spec for verifying the doubtful facts of a build's ``counts`` table.

    Raises ``ValueError`` when a column is missing or a (lang, index) pair appears twice.
    """
    absent = sorted(set(REQUIRED_COLUMNS) - set(counts.columns))
    if absent:
        raise ValueError(f"facts verification recipe: counts lack column(s) {', '.join(absent)} (need {', '.join(REQUIRED_COLUMNS)})")
    rows = counts.select(REQUIRED_COLUMNS).with_columns(pl.col("lang").cast(pl.String))
    repeated = rows.filter(pl.struct("lang", "index").is_duplicated())
    if repeated.height:
        # a facts reader keeps one row per language and index; two would make the item ids ambiguous
        raise ValueError(
            f"facts verification recipe: (lang, index) pairs appear more than once, e.g. "
            f"{item_id(repeated['lang'][0], repeated['index'][0])!r}; give one row per language and index"
        )
    english = {r["index"]: r for r in rows.filter(pl.col("lang") == ENGLISH).iter_rows(named=True)}
    items = []
    for fact in rows.sort("lang", "index").iter_rows(named=True):
        en = english.get(fact["index"])
        reasons = reasons_of(fact, en, english_zero_rule=english_zero_rule)
        if not reasons:
            continue
        items.append(Item(
            id=item_id(fact["lang"], fact["index"]),
            payload=_payload(fact, en, reasons),
            strata={"lang": fact["lang"], "reason": "+".join(reasons)},
        ))
    return AnnotationSpec(
        name=SPEC_NAME,
        title="Fact frequencies: verify doubtful facts",
        version=RECIPE_VERSION,
        guideline=guideline(),
        display=DISPLAY,
        questions=QUESTIONS,
        items=tuple(items),
    )


# --------------------------------------------------------------------------- routing


def route_by_language(spec: AnnotationSpec, verifiers: Mapping[str, Sequence[str]], *, seed: int = 0) -> RoutingPlan:
    """Every item of ``spec``, one verifier each: a language named in ``verifiers`` (with at least
    one name) sends its items to its verifiers, least loaded first; any other language's items
    are open to anyone. The plan's strata count items by (lang, reason)."""
    groups: dict[tuple[str, ...], list[Item]] = {}
    for item in spec.items:
        who = tuple(dict.fromkeys(verifiers.get(item.strata["lang"]) or ()))
        groups.setdefault(who, []).append(item)
    assignments = []
    for who, items in sorted(groups.items()):
        assignments.extend(route(spec.with_items(tuple(items)), RoutingOptions(annotators=who, seed=seed)).assignments)
    everyone = tuple(dict.fromkeys(name for who in sorted(groups) for name in who))
    strata: dict[tuple[str, ...], int] = {}
    for a in assignments:
        key = (a.item.strata["lang"], a.item.strata["reason"])
        strata[key] = strata.get(key, 0) + 1
    return RoutingPlan(tuple(assignments), RoutingOptions(annotators=everyone, seed=seed), strata)


# --------------------------------------------------------------------------- corrections


def _moment(value: Any) -> datetime | None:
    """A judgment's time as an aware UTC datetime (ISO 8601 text or a datetime); None when blank."""
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def aliases_from_text(text: str) -> list[str]:
    """One alias per line: stripped, blank lines and repeats dropped, order kept."""
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def _latest_judgments(judgments: pl.DataFrame | Path) -> list[dict[str, Any]]:
    """The latest judgment of each item (by update time, then annotation id), whoever made it."""
    df = judgments if isinstance(judgments, pl.DataFrame) else pl.read_parquet(
        Path(judgments) / "judgments.parquet" if Path(judgments).is_dir() else judgments
    )
    absent = sorted({"item_id", "annotator", "updated_at", "answers"} - set(df.columns))
    if absent:
        raise ValueError(f"fact corrections: the judgments have no {', '.join(absent)} (read a pull's judgments.parquet)")
    rows = []
    for r in df.iter_rows(named=True):
        at = _moment(r["updated_at"]) or _moment(r.get("created_at"))
        rows.append({**r, "_at": at, "_order": (at or datetime.min.replace(tzinfo=timezone.utc), r.get("annotation_id") or 0)})
    latest: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["_order"]):
        latest[r["item_id"]] = r
    return [latest[i] for i in sorted(latest)]


def _fix(answers: Mapping[str, Any], shown: Mapping[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """The values a ``fix`` changes (null: keep), or why it cannot be applied.

    A box left out of the answers keeps the value; a box equal to what was shown (ignoring line
    endings and surrounding white space) changes nothing.
    """
    changed: dict[str, Any] = {}
    for name in (*FORMS, *ALIAS_FIELDS):
        text = answers.get(name)
        if text is None:
            continue
        if name in FORMS and is_blank(text):
            return {}, f"fix with a blank {name}: not applied (a fact needs both forms)"
        read = str.strip if name in FORMS else aliases_from_text
        if shown is None or read(text) != read(shown[name]):
            changed[name] = read(text)
    return changed, None


def corrections_from_judgments(spec: AnnotationSpec, judgments: pl.DataFrame | Path) -> pl.DataFrame:
    """One decision per judged fact: the latest judgment of the item, whoever made it, wins.

    ``judgments`` is a pull's ``judgments.parquet`` (a DataFrame, the file, or its snapshot dir):
    ``item_id``, ``annotator``, ``updated_at`` (ISO 8601 text or datetime) and ``answers`` (JSON
    text or a dict); ``annotation_id`` breaks timestamp ties when present. The result has the
    columns of :data:`CORRECTION_SCHEMA`, one row per item, sorted by item id:

    * ``confirm`` -> ``confirmed`` (the boxes are ignored: a stray keystroke changes nothing);
    * ``fix`` -> ``fixed`` with the changed values in ``subject``, ``object``, ``subject_aliases``,
      ``object_aliases`` (null: keep); alias boxes are read one alias per line. A fix that
      changes nothing is ``confirmed``;
    * an unusable latest judgment (no verdict, answers the spec does not accept, a fix with a
      blank form, an item id that is not ``<lang>:<index>``) -> ``status`` null and ``problem``
      says why. It is not applied, and earlier judgments do not stand in for it.

    An item that is no longer in ``spec`` is still decided: a correction removes the doubt that
    made a fact an item (a fixed ``same_forms`` fact is no longer doubtful), so the spec of a
    build made with the corrections lacks it, while its judgment stays the latest word on it.
    The boxes then hold the whole verified value (they were prefilled), so a fix sets each box it
    holds; the ``*_before`` columns and ``reasons`` stay null. ``annotator`` and
    ``annotated_at`` (UTC) are those of the deciding judgment.
    """
    shown_by_item = {i.id: i.payload for i in spec.items}
    decided: list[dict[str, Any]] = []
    for r in _latest_judgments(judgments):
        answers = r["answers"] if isinstance(r["answers"], dict) else json.loads(r["answers"])
        shown = shown_by_item.get(r["item_id"])
        parsed = parse_item_id(r["item_id"])
        changed: dict[str, Any] = {}
        status, problem = None, None
        if parsed is None:
            problem = f"item id {r['item_id']!r} is not <lang>:<index>"
        elif problems := spec.check_answers(answers):
            problem = "; ".join(problems)
        elif answers.get("verdict") is None:
            problem = "no verdict"
        elif answers["verdict"] == "confirm":
            status = "confirmed"
        else:
            changed, problem = _fix(answers, shown)
            status = None if problem else ("fixed" if changed else "confirmed")
        lang, index = parsed if parsed is not None else (None, None)
        note = answers.get("note")
        decided.append({
            "item_id": r["item_id"], "lang": lang, "index": index, "status": status,
            **{f: changed.get(f) for f in (*FORMS, *ALIAS_FIELDS)},
            "subject_before": shown["subject"] if shown else None,
            "object_before": shown["object"] if shown else None,
            "subject_aliases_before": aliases_from_text(shown["subject_aliases"]) if shown else None,
            "object_aliases_before": aliases_from_text(shown["object_aliases"]) if shown else None,
            "reasons": list(shown["reason_codes"]) if shown else None,
            "annotator": r["annotator"], "annotated_at": r["_at"],
            "note": note.strip() if isinstance(note, str) and note.strip() else None, "problem": problem,
        })
    return pl.DataFrame(decided, schema=CORRECTION_SCHEMA)
