"""The annotation spec: what a recipe returns and what every backend translates into server calls.

A spec is plain, typed data with no network and no backend in it:

* ``display``: what the annotator sees, in order (a header, a text, a dialogue, an image);
* ``questions``: what the annotator answers (multi choice, single choice, a flag, a free-text
  correction);
* ``items``: one payload per thing to label, with the strata and confidence that routing uses
  and, for gold items, the known answers;
* ``preannotations``: machine answers shown to the annotator, each with its model and score;
* ``guideline``: markdown shown beside the task.

Answers everywhere (pre-annotations, gold, pulled annotations) are ``{question: value}`` with
``list[str]`` for multi choice, ``str`` for single choice and text, ``bool`` for a flag.
:meth:`AnnotationSpec.check_answers` says what is wrong with an answer set, so that an answer
with a label the recipe does not know is quarantined with a reason instead of trusted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

QuestionKind = Literal["multi_choice", "single_choice", "flag", "text"]
DisplayKind = Literal["header", "text", "dialogue", "image"]
Answers = Mapping[str, Any]


@dataclass(frozen=True)
class Question:
    name: str
    kind: QuestionKind
    prompt: str
    choices: tuple[str, ...] = ()
    required: bool = False
    hints: Mapping[str, str] = field(default_factory=dict)  # choice -> one-line hint shown in the UI
    source: str | None = None  # text questions: the payload field being corrected
    # many choices (e.g. 1,000 classes): the UI offers a search box instead of a list of buttons
    searchable: bool = False
    # (question, choice): shown only while that single-choice question has that answer
    shown_when: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.kind in ("multi_choice", "single_choice") and not self.choices:
            raise ValueError(f"question {self.name!r}: a {self.kind} question needs choices")
        if self.kind in ("flag", "text") and self.choices:
            raise ValueError(f"question {self.name!r}: a {self.kind} question has no choices")
        if self.searchable and self.kind != "single_choice":
            raise ValueError(f"question {self.name!r}: only a single_choice question can be searchable")

    def ui(self) -> dict[str, Any]:
        """What the UI depends on; the newer options appear only when set, so older specs keep their fingerprint."""
        out = {**self.__dict__, "hints": dict(self.hints)}
        if not self.searchable:
            del out["searchable"]
        if self.shown_when is None:
            del out["shown_when"]
        else:
            out["shown_when"] = list(self.shown_when)
        return out

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not a valid answer to this question, or None."""
        if self.kind == "multi_choice":
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                return f"{self.name}: expected a list of choices, got {value!r}"
            unknown = sorted(set(value) - set(self.choices))
            if unknown:
                return f"{self.name}: unknown label(s) {', '.join(map(repr, unknown))} (known: {', '.join(self.choices)})"
        elif self.kind == "single_choice":
            if not isinstance(value, str):
                return f"{self.name}: expected one choice, got {value!r}"
            if value not in self.choices:
                return f"{self.name}: unknown label {value!r} (known: {', '.join(self.choices)})"
        elif self.kind == "flag":
            if not isinstance(value, bool):
                return f"{self.name}: expected true/false, got {value!r}"
        elif not isinstance(value, str):
            return f"{self.name}: expected text, got {value!r}"
        return None


@dataclass(frozen=True)
class Display:
    kind: DisplayKind
    field: str  # payload key
    label: str = ""
    highlight: bool = False


@dataclass(frozen=True)
class Item:
    id: str
    payload: Mapping[str, Any]  # JSON-ready; keys referenced by Display.field
    strata: Mapping[str, str] = field(default_factory=dict)  # routing: e.g. topic, suggested strategy
    confidence: float | None = None  # of the pre-annotation; routing can take the lowest first
    gold: Answers | None = None  # known answers: the item measures annotator accuracy


@dataclass(frozen=True)
class PreAnnotation:
    item_id: str
    answers: Answers
    model: str
    score: float


@dataclass(frozen=True)
class AnnotationSpec:
    name: str  # stable project key, e.g. "sad-strategies"
    title: str
    version: str  # of the recipe; part of the fingerprint
    guideline: str  # markdown
    display: tuple[Display, ...]
    questions: tuple[Question, ...]
    items: tuple[Item, ...] = ()
    preannotations: tuple[PreAnnotation, ...] = ()

    def __post_init__(self) -> None:
        names = [q.name for q in self.questions]
        if len(set(names)) != len(names):
            raise ValueError(f"spec {self.name!r}: duplicate question names {names}")
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"spec {self.name!r}: duplicate item ids")
        known = set(ids)
        for p in self.preannotations:
            if p.item_id not in known:
                raise ValueError(f"spec {self.name!r}: pre-annotation for unknown item {p.item_id!r}")
            problems = self.check_answers(p.answers)
            if problems:
                raise ValueError(f"spec {self.name!r}: pre-annotation of {p.item_id!r} by {p.model}: {'; '.join(problems)}")
        for q in self.questions:
            if q.shown_when is not None:
                other = next((o for o in self.questions if o.name == q.shown_when[0]), None)
                if other is None or other.kind != "single_choice" or q.shown_when[1] not in other.choices:
                    raise ValueError(f"spec {self.name!r}: question {q.name!r} is shown when {q.shown_when[0]!r} is "
                                     f"{q.shown_when[1]!r}, which no single-choice question of the spec offers")
        for i in self.items:
            if i.gold is not None:
                problems = self.check_answers(i.gold)
                if problems:
                    raise ValueError(f"spec {self.name!r}: gold answers of {i.id!r}: {'; '.join(problems)}")

    def question(self, name: str) -> Question:
        for q in self.questions:
            if q.name == name:
                return q
        raise KeyError(f"spec {self.name!r} has no question {name!r}; it has {', '.join(q.name for q in self.questions)}")

    def check_answers(self, answers: Answers) -> list[str]:
        """Problems with an answer set: unknown questions, unknown labels, wrong types."""
        problems = []
        known = {q.name: q for q in self.questions}
        for name, value in answers.items():
            q = known.get(name)
            if q is None:
                problems.append(f"unknown question {name!r} (known: {', '.join(known)})")
                continue
            why = q.check(value)
            if why:
                problems.append(why)
        return problems

    @property
    def fingerprint(self) -> str:
        """Hash of what the UI depends on (not the items): a changed fingerprint updates the project."""
        ui = {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "guideline": self.guideline,
            "display": [d.__dict__ for d in self.display],
            "questions": [q.ui() for q in self.questions],
        }
        return hashlib.sha256(json.dumps(ui, sort_keys=True).encode()).hexdigest()[:16]

    def with_items(self, items: tuple[Item, ...], preannotations: tuple[PreAnnotation, ...] | None = None) -> "AnnotationSpec":
        """A copy restricted to ``items`` (routing output) with their pre-annotations."""
        keep = {i.id for i in items}
        pre = self.preannotations if preannotations is None else preannotations
        return AnnotationSpec(
            self.name, self.title, self.version, self.guideline, self.display, self.questions,
            tuple(items), tuple(p for p in pre if p.item_id in keep),
        )
