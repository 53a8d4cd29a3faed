"""Translate an :class:`AnnotationSpec` into Argilla dataset settings, records and answers back.

Pure functions, no server: the output is the JSON the Argilla 2.8 REST API takes (the SDK's
``rg.Settings`` objects need a live client even to be constructed), so every recipe's mapping is
unit-tested offline.

* :func:`dataset_settings`: fields, questions, metadata properties, guidelines and the task
  distribution (``min_submitted`` = k) of a spec;
* :func:`record_payload`: one record (``external_id`` = the item id, fields, metadata,
  suggestions from the pre-annotation with its score and agent);
* :func:`to_values` / :func:`from_values`: answers <-> Argilla response values.

Decisions (see docs/annotation.md, "Argilla"):

* every display is a ``text`` field; a dialogue is markdown (``**speaker:** text`` per turn); an
  image is markdown holding an ``<img>`` tag whose source is the URL, or for a local file a
  ``data:`` URL (Argilla cannot serve files from the annotator's disk; the record carries the
  image, so keep images small); a header is a plain text field;
* a field whose name is also a question's (PolyRefuse's ``translation``) is called
  ``<name>_shown``: Argilla needs one namespace for fields, questions and metadata;
* multi choice -> ``multi_label_selection``; single choice -> ``label_selection`` (searchable: a
  short visible list and Argilla's search box), or a ``text`` question when it has more choices
  than the server allows (500 by default; reLAIONet's 1,000 classes): the pull checks the typed
  answer against the choices and quarantines anything else; flag -> ``label_selection`` yes/no;
  text -> ``text``, pre-filled through a suggestion with the payload value it corrects;
* ``shown_when``: Argilla has no conditional questions, so the question says when to answer it;
* metadata (prefixed ``cf_``): each stratum, ``cf_gold``, ``cf_assigned`` (annotators routed to
  the item) and ``cf_confidence``.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import re
from pathlib import Path
from typing import Any, Mapping

from annotation.backends.labelstudio.config import from_result
from annotation.routing import Assignment
from annotation.spec import AnnotationSpec, Answers, Display, PreAnnotation, Question

MAX_LABELS = 500  # argilla-server's ARGILLA_LABEL_SELECTION_OPTIONS_MAX_ITEMS default
VISIBLE_LABELS = 20  # a searchable question shows this many labels and a search box
NAME = re.compile(r"^(?=.*[a-z0-9])[a-z0-9_-]+$")
FLAG_VALUES = {"yes": True, "no": False}
SOURCE_AGENT = "corpusforge:source"  # the suggestion that pre-fills a correction with the text it corrects
META_PREFIX = "cf_"
TITLE_MAX, DESCRIPTION_MAX = 500, 1000


def _name(name: str, what: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"{what} {name!r} is not a valid Argilla name (lowercase letters, digits, '_' and '-')")
    return name


def field_name(spec: AnnotationSpec, display: Display) -> str:
    questions = {q.name for q in spec.questions}
    return _name(f"{display.field}_shown" if display.field in questions else display.field, "display field")


def _target(spec: AnnotationSpec) -> Display:
    shown = [d for d in spec.display if d.kind != "header"] or list(spec.display)
    if not shown:
        raise ValueError(f"spec {spec.name!r}: Argilla needs at least one display to show")
    return next((d for d in shown if d.highlight), shown[0])


def is_typed_choice(q: Question, max_labels: int = MAX_LABELS) -> bool:
    """A single choice with more choices than the server allows: asked as a text question."""
    return q.kind == "single_choice" and len(q.choices) > max_labels


def _description(q: Question, spec: AnnotationSpec, max_labels: int) -> str:
    parts = []
    if q.shown_when is not None:
        parts.append(f"Answer only when {spec.question(q.shown_when[0]).prompt!r} is {q.shown_when[1]!r}; otherwise leave it empty.")
    if is_typed_choice(q, max_labels):
        parts.append(f"Type one of the {len(q.choices):,} choices exactly as written, e.g. {q.choices[0]!r}.")
    return " ".join(parts)[:DESCRIPTION_MAX]


def _options(choices: tuple[str, ...], hints: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"value": c, "text": c, **({"description": hints[c][:DESCRIPTION_MAX]} if c in hints else {})} for c in choices]


def question_settings(q: Question, spec: AnnotationSpec, max_labels: int = MAX_LABELS) -> dict[str, Any]:
    """The REST payload of one question (``POST /api/v1/datasets/{id}/questions``)."""
    if q.kind == "multi_choice":
        # an empty selection is a valid answer here and Argilla refuses an empty list: never required
        settings: dict[str, Any] = {"type": "multi_label_selection", "options": _options(q.choices, q.hints), "options_order": "natural"}
        required = False
    elif q.kind == "single_choice" and not is_typed_choice(q, max_labels):
        settings = {"type": "label_selection", "options": _options(q.choices, q.hints)}
        if q.searchable and len(q.choices) > VISIBLE_LABELS:
            settings["visible_options"] = VISIBLE_LABELS
        required = q.required and q.shown_when is None
    elif q.kind == "flag":
        settings = {"type": "label_selection", "options": [{"value": v, "text": v} for v in FLAG_VALUES]}
        required = False
    else:  # text, or a single choice with too many choices to list
        settings = {"type": "text", "use_markdown": False}
        required = q.required and q.shown_when is None
    return {"name": _name(q.name, "question"), "title": q.prompt[:TITLE_MAX], "description": _description(q, spec, max_labels) or None,
            "required": required, "settings": settings}


def metadata_names(spec: AnnotationSpec) -> list[str]:
    strata = sorted({k for i in spec.items for k in i.strata})
    return [_name(META_PREFIX + k, "stratum") for k in strata] + ["cf_gold", "cf_assigned", "cf_confidence"]


def dataset_settings(spec: AnnotationSpec, *, min_submitted: int = 1, max_labels: int = MAX_LABELS) -> dict[str, Any]:
    """Everything the dataset of ``spec`` is made of: ``guidelines``, ``distribution``, ``fields``,
    ``questions`` and ``metadata`` (lists of REST payloads, in the spec's order)."""
    target = _target(spec)
    fields = [
        {"name": field_name(spec, d), "title": (d.label or d.field)[:TITLE_MAX], "required": d is target,
         "settings": {"type": "text", "use_markdown": d.kind in ("dialogue", "image")}}
        for d in spec.display
    ]
    metadata = [
        {"name": n, "title": n[len(META_PREFIX):].replace("_", " "), "settings": {"type": "float" if n == "cf_confidence" else "terms"},
         "visible_for_annotators": True}
        for n in metadata_names(spec)
    ]
    guidelines = f"# {spec.title}\n\n{spec.guideline}".strip()[:10000]
    return {
        "guidelines": guidelines,
        "distribution": {"strategy": "overlap", "min_submitted": max(1, min_submitted)},
        "fields": fields,
        "questions": [question_settings(q, spec, max_labels) for q in spec.questions],
        "metadata": metadata,
    }


def structure(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What cannot change on a dataset that has records: field and question names with their types
    and choices, and the metadata names. Two datasets with equal structures take the same records."""
    def options(s: Mapping[str, Any]) -> list[str] | None:
        return [o["value"] for o in s["options"]] if "options" in s else None

    return {
        "fields": {f["name"]: f["settings"]["type"] for f in settings["fields"]},
        "questions": {q["name"]: [q["settings"]["type"], options(q["settings"])] for q in settings["questions"]},
        "metadata": {m["name"]: m["settings"]["type"] for m in settings["metadata"]},
    }


def differences(wanted: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two :func:`structure` results (empty: compatible)."""
    out = []
    for part in ("fields", "questions", "metadata"):
        want, have = wanted[part], found[part]
        for name in sorted(set(want) - set(have)):
            out.append(f"{part[:-1] if part != 'metadata' else 'metadata property'} {name!r} is missing on the server")
        for name in sorted(set(have) - set(want)):
            out.append(f"{part[:-1] if part != 'metadata' else 'metadata property'} {name!r} is on the server but not in the recipe")
        for name in sorted(set(want) & set(have)):
            if want[name] != have[name]:
                if part == "questions" and want[name][0] == have[name][0]:
                    gone = sorted(set(have[name][1] or []) - set(want[name][1] or []))
                    new = sorted(set(want[name][1] or []) - set(have[name][1] or []))
                    out.append(f"question {name!r} has other labels (recipe adds {new[:5]}, drops {gone[:5]})")
                else:
                    out.append(f"{part[:-1] if part != 'metadata' else 'metadata property'} {name!r} is {have[name]!r} on the server, {want[name]!r} in the recipe")
    return out


# --------------------------------------------------------------------------- records


def _image_source(value: str) -> str:
    if value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"image {value} is neither a URL nor a readable file")
    mime = mimetypes.guess_type(path.name)[0] or "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def field_value(display: Display, value: Any) -> str | None:
    """The text of one field; None when the payload has nothing to show."""
    if value is None or value == "" or value == []:
        return None
    if display.kind == "dialogue":
        turns = value if isinstance(value, list) else json.loads(value)
        return "\n\n".join(f"**{html.escape(str(t.get('speaker', '')))}:** {html.escape(str(t.get('text', '')))}" for t in turns)
    if display.kind == "image":
        return f'<img src="{html.escape(_image_source(str(value)))}" alt="{html.escape(display.label or display.field)}" style="max-width: 100%"/>'
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, (int, float)) else str(value)


def _suggestion_value(q: Question, value: Any, max_labels: int) -> Any:
    if q.kind == "flag":
        return "yes" if value else "no"
    if q.kind == "multi_choice":
        return list(value) or None  # Argilla refuses an empty label list
    return value if value != "" else None


def suggestions(spec: AnnotationSpec, item_payload: Mapping[str, Any], pre: PreAnnotation | None, max_labels: int = MAX_LABELS) -> dict[str, dict[str, Any]]:
    """question name -> {"value", "score", "agent"}: the pre-annotation, and for corrections the
    text being corrected (so the annotator edits it instead of typing it again)."""
    out: dict[str, dict[str, Any]] = {}
    for q in spec.questions:
        if q.kind == "text" and q.source and isinstance(item_payload.get(q.source), str) and item_payload[q.source]:
            out[q.name] = {"value": item_payload[q.source], "score": None, "agent": SOURCE_AGENT}
    if pre is not None:
        for name, value in pre.answers.items():
            q = spec.question(name)
            v = _suggestion_value(q, value, max_labels)
            if v is None:
                continue
            score = [float(pre.score)] * len(v) if isinstance(v, list) else float(pre.score)
            out[name] = {"value": v, "score": score, "agent": pre.model}
    return out


def record_payload(spec: AnnotationSpec, assignment: Assignment, pre: PreAnnotation | None, question_ids: Mapping[str, str],
                   max_labels: int = MAX_LABELS) -> dict[str, Any]:
    """One record of ``POST /api/v1/datasets/{id}/records/bulk``; ``question_ids``: name -> server id."""
    item = assignment.item
    target = _target(spec)
    fields = {}
    for d in spec.display:
        text = field_value(d, item.payload.get(d.field))
        if text is None and d is target:
            text = "(empty)"  # the required field: Argilla refuses a record without it
        if text is not None:
            fields[field_name(spec, d)] = text
    metadata: dict[str, Any] = {META_PREFIX + k: str(v) for k, v in item.strata.items()}
    metadata["cf_gold"] = "yes" if assignment.is_gold else "no"
    if assignment.annotators:
        metadata["cf_assigned"] = list(assignment.annotators)
    if item.confidence is not None:
        metadata["cf_confidence"] = float(item.confidence)
    return {
        "external_id": item.id,
        "fields": fields,
        "metadata": metadata,
        "suggestions": [
            {"question_id": question_ids[name], "type": "model", **{k: v for k, v in s.items() if v is not None}}
            for name, s in suggestions(spec, item.payload, pre, max_labels).items()
        ],
    }


# --------------------------------------------------------------------------- answers


def to_values(spec: AnnotationSpec, answers: Answers) -> dict[str, dict[str, Any]]:
    """Argilla response ``values`` for ``answers`` (an empty label list and empty text are left out:
    Argilla refuses them, and :func:`from_values` reads them back as the same answers)."""
    values = {}
    for name, value in answers.items():
        q = spec.question(name)
        if q.kind == "flag":
            values[name] = {"value": "yes" if value else "no"}
        elif q.kind == "multi_choice":
            if value:
                values[name] = {"value": list(value)}
        elif value != "":
            values[name] = {"value": value}
    return values


def from_values(spec: AnnotationSpec, values: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Answers from Argilla response ``values``, and the problems that make them untrustworthy.

    As with Label Studio: an unanswered multi choice reads as ``[]``, an unanswered flag as
    false; an unanswered single choice or text stays absent.
    """
    answers: dict[str, Any] = {}
    problems: list[str] = []
    known = {q.name: q for q in spec.questions}
    for name, wrapped in (values or {}).items():
        q = known.get(name)
        if q is None:
            problems.append(f"unknown question {name!r} (the Argilla dataset differs from recipe {spec.name} v{spec.version})")
            continue
        value = wrapped.get("value") if isinstance(wrapped, Mapping) else wrapped
        if q.kind == "flag":
            if value not in FLAG_VALUES:
                problems.append(f"{name}: unknown flag value {value!r} (expected yes or no)")
            else:
                answers[name] = FLAG_VALUES[value]
        elif q.kind == "multi_choice" and isinstance(value, list):
            answers[name] = sorted(set(value), key=lambda c: q.choices.index(c) if c in q.choices else len(q.choices))
        elif q.kind == "single_choice" and isinstance(value, str):
            answers[name] = value.strip() if len(q.choices) > MAX_LABELS else value
        else:
            answers[name] = value
    unanswered, _ = from_result(spec, [])  # the same defaults as Label Studio's: [] and false
    answers = {**unanswered, **answers}
    problems.extend(spec.check_answers(answers))
    return answers, problems
