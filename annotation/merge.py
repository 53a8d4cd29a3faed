"""Merge judgments into labels under a declared policy; what the policy cannot settle is queued.

Default policy (``MergePolicy()``), per item:

* multi choice: a label is in when more than half of the annotators ticked it; exactly half is a
  tie;
* single choice: the plurality answer; a tie between the top answers is a tie;
* flag: majority; an item that the majority flags (e.g. *unclear*) is queued;
* the item's agreement is the mean over its questions of the share of annotators who gave the
  merged answer (per label for multi choice); below ``min_agreement`` the item is queued;
* items with fewer than ``min_annotators`` annotators are left out (not merged, not queued).

Gold items are merged from their gold answers (``source = "gold"``). An adjudicator's decision
replaces the votes of an item (``source = "adjudicated"``). Every merged row carries its votes,
annotators and source: the provenance that releases report.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from annotation.spec import AnnotationSpec, Answers

Judgment = tuple[str, str, Answers]  # (item id, annotator, answers)


@dataclass(frozen=True)
class MergePolicy:
    kind: str = "majority"
    min_annotators: int = 1
    min_agreement: float = 0.6
    queue_flags: tuple[str, ...] = ("unclear",)

    def __post_init__(self) -> None:
        if self.kind != "majority":
            raise ValueError(f"merge policy {self.kind!r} is not known; available: majority")
        if not 0 <= self.min_agreement <= 1:
            raise ValueError(f"merge: min_agreement must be in [0, 1], got {self.min_agreement}")

    def describe(self) -> str:
        return (
            f"majority per label; ties, items flagged {', '.join(self.queue_flags) or '-'} and items with agreement "
            f"< {self.min_agreement:g} go to adjudication; items need >= {self.min_annotators} annotator(s)"
        )


@dataclass(frozen=True)
class MergedItem:
    item_id: str
    answers: dict[str, Any]
    votes: dict[str, dict[str, int]]  # question -> answer -> annotators giving it
    annotators: tuple[str, ...]
    agreement: float
    source: str  # majority | adjudicated | gold
    adjudicator: str | None = None


@dataclass(frozen=True)
class QueuedItem:
    item_id: str
    reasons: tuple[str, ...]
    votes: dict[str, dict[str, int]]
    annotators: tuple[str, ...]
    answers_by_annotator: dict[str, dict[str, Any]]
    proposal: dict[str, Any]  # the majority answer, pre-filled for the adjudicator


@dataclass(frozen=True)
class MergeResult:
    merged: tuple[MergedItem, ...]
    queue: tuple[QueuedItem, ...]
    policy: MergePolicy
    left_out: int  # items with too few annotators

    def counts(self) -> dict[str, int]:
        by_source = Counter(m.source for m in self.merged)
        return {"merged": len(self.merged), "queued": len(self.queue), "left_out": self.left_out, **{f"source_{k}": v for k, v in sorted(by_source.items())}}

    def rows(self) -> list[dict[str, Any]]:
        """Merged labels as flat rows (answers and votes JSON-encoded) for a parquet file."""
        return [
            {
                "item_id": m.item_id, "answers": json.dumps(m.answers, sort_keys=True), "votes": json.dumps(m.votes, sort_keys=True),
                "annotators": list(m.annotators), "n_annotators": len(m.annotators), "agreement": m.agreement,
                "source": m.source, "adjudicator": m.adjudicator,
            }
            for m in self.merged
        ]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


def _merge_item(spec: AnnotationSpec, by_annotator: Mapping[str, Answers], policy: MergePolicy) -> tuple[dict, dict, float, list[str]]:
    n = len(by_annotator)
    answers: dict[str, Any] = {}
    votes: dict[str, dict[str, int]] = {}
    shares: list[float] = []
    reasons: list[str] = []
    for q in spec.questions:
        given = [a[q.name] for a in by_annotator.values() if q.name in a]
        if not given:
            continue
        if q.kind == "multi_choice":
            counts = Counter(label for g in given for label in set(g))
            votes[q.name] = {c: counts.get(c, 0) for c in q.choices}
            ties = [c for c in q.choices if 2 * counts.get(c, 0) == len(given)]
            if ties:
                reasons.append(f"tie on {q.name}: {', '.join(ties)}")
            answers[q.name] = [c for c in q.choices if 2 * counts.get(c, 0) > len(given)]
            shares.extend(max(counts.get(c, 0), len(given) - counts.get(c, 0)) / len(given) for c in q.choices)
        else:
            counts = Counter(_key(g) for g in given)
            votes[q.name] = dict(counts)
            top = counts.most_common()
            if len(top) > 1 and top[0][1] == top[1][1]:
                reasons.append(f"tie on {q.name}: {', '.join(k for k, c in top if c == top[0][1])}")
            winner = next(g for g in given if _key(g) == top[0][0])
            answers[q.name] = winner
            shares.append(top[0][1] / len(given))
            if q.kind == "flag" and q.name in policy.queue_flags and winner is True:
                reasons.append(f"flagged {q.name} by {top[0][1]} of {n}")
    agreement = round(sum(shares) / len(shares), 4) if shares else 0.0
    if agreement < policy.min_agreement:
        reasons.append(f"agreement {agreement:.2f} < {policy.min_agreement:g}")
    return answers, votes, agreement, reasons


def merge(
    spec: AnnotationSpec,
    judgments: Iterable[Judgment],
    policy: MergePolicy = MergePolicy(),
    *,
    decisions: Mapping[str, tuple[str, Answers]] | None = None,
) -> MergeResult:
    """Merge ``judgments`` (latest per annotator and item) under ``policy``.

    ``decisions``: item id -> (adjudicator, answers) from the adjudication queue; they win.
    """
    decisions = decisions or {}
    gold = {i.id: i.gold for i in spec.items if i.gold is not None}
    per_item: dict[str, dict[str, Answers]] = {}
    for item_id, annotator, answers in judgments:
        per_item.setdefault(item_id, {})[annotator] = answers
    merged: list[MergedItem] = []
    queue: list[QueuedItem] = []
    left_out = 0
    for item_id in sorted(set(per_item) | set(decisions)):
        by_annotator = per_item.get(item_id, {})
        annotators = tuple(sorted(by_annotator))
        if item_id in gold:
            merged.append(MergedItem(item_id, dict(gold[item_id]), {}, annotators, 1.0, "gold"))
            continue
        answers, votes, agreement, reasons = _merge_item(spec, by_annotator, policy) if by_annotator else ({}, {}, 0.0, [])
        if item_id in decisions:
            adjudicator, decided = decisions[item_id]
            merged.append(MergedItem(item_id, dict(decided), votes, annotators, agreement, "adjudicated", adjudicator))
        elif len(annotators) < policy.min_annotators:
            left_out += 1
        elif reasons:
            queue.append(QueuedItem(item_id, tuple(reasons), votes, annotators, {a: dict(v) for a, v in by_annotator.items()}, answers))
        else:
            merged.append(MergedItem(item_id, answers, votes, annotators, agreement, "majority"))
    return MergeResult(tuple(merged), tuple(queue), policy, left_out)


def adjudication_spec(spec: AnnotationSpec, queue: Iterable[QueuedItem]) -> AnnotationSpec:
    """The spec of the adjudication project: the same questions, plus every annotator's answers.

    Each queued item shows the original display and a summary of who answered what; the
    majority answer is pre-filled as the proposal.
    """
    from annotation.spec import Display, Item, PreAnnotation

    items = []
    pre = []
    original = {i.id: i for i in spec.items}
    for q in queue:
        lines = [f"Why queued: {'; '.join(q.reasons)}"]
        for annotator, answers in sorted(q.answers_by_annotator.items()):
            shown = "; ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in sorted(answers.items()))
            lines.append(f"{annotator}: {shown}")
        base = original[q.item_id].payload if q.item_id in original else {}
        items.append(Item(q.item_id, {**base, "cf_votes": "\n".join(lines)}))
        proposal = {k: v for k, v in q.proposal.items() if not spec.question(k).check(v)}
        pre.append(PreAnnotation(q.item_id, proposal, model="majority-vote", score=0.0))
    display = (*spec.display, Display("text", "cf_votes", "Annotators' answers"))
    return AnnotationSpec(
        name=f"{spec.name}-adjudication",
        title=f"{spec.title} (adjudication)",
        version=spec.version,
        guideline="Every annotator's answers are listed under the task; decide the final labels.\n\n" + spec.guideline,
        display=display,
        questions=spec.questions,
        items=tuple(items),
        preannotations=tuple(pre),
    )
