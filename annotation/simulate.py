"""Simulated annotators: for the demo, tests and benchmarks only, never for a real dataset.

Each simulated annotator is a real user on the server (its e-mail is in a reserved ``.invalid``
domain, so every judgment it makes is marked ``simulated`` when pulled) and submits through the
real API. Its answers are the known labels with noise: each multi-choice label flipped, each
single choice replaced by another choice, with probability ``noise``; a flag is set with
probability ``noise / 2``. Noise is seeded per (seed, annotator, item): reruns give the same
answers, and a rerun after an interruption submits only what is missing (``simulated.jsonl``
in the project state records every submission).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from annotation.spec import AnnotationSpec, Answers
from annotation.store import ProjectState

LOG = "simulated.jsonl"


def noisy(spec: AnnotationSpec, truth: Answers, noise: float, rng: random.Random) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for q in spec.questions:
        if q.name not in truth and q.kind != "flag":
            continue
        value = truth.get(q.name)
        if q.kind == "multi_choice":
            picked = set(value)
            for c in q.choices:
                if rng.random() < noise:
                    picked ^= {c}
            answers[q.name] = [c for c in q.choices if c in picked]
        elif q.kind == "single_choice":
            if rng.random() < noise and len(q.choices) > 1:
                value = rng.choice([c for c in q.choices if c != value])
            answers[q.name] = value
        elif q.kind == "flag":
            answers[q.name] = bool(value) or rng.random() < noise / 2
        else:
            answers[q.name] = value
    return answers


def oracle_from_preannotations(spec: AnnotationSpec, flip: float, seed: int) -> dict[str, dict[str, Any]]:
    """Known labels for a demo without real ones: the pre-annotations with ``flip`` noise.

    The rules are then imperfect against the "truth", as they are against people; the figures
    this gives describe the simulation, not SAD.
    """
    truth = {}
    for p in spec.preannotations:
        rng = random.Random(int(hashlib.sha256(f"oracle:{seed}:{p.item_id}".encode()).hexdigest()[:16], 16))
        truth[p.item_id] = noisy(spec, dict(p.answers), flip, rng)
    return truth


@dataclass
class SimulationReport:
    annotators: dict[str, int]  # name -> user id
    submitted: int
    already: int
    no_truth: int
    left_to_others: int  # routed to annotators who are not simulated here


def simulate(
    backend,
    spec: AnnotationSpec,
    state: ProjectState,
    truth: Mapping[str, Answers],
    annotators: list[str],
    *,
    noise: float,
    seed: int = 0,
    overlap: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Annotate every pushed item as routed (``cf_assigned``) or, when unassigned, by ``overlap``."""
    if not annotators:
        raise ValueError("simulate: give at least one annotator name")
    users = backend.ensure_annotators(annotators, simulated=True)
    log_path = state.root / LOG
    done: set[tuple[str, str]] = set()
    if log_path.exists():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done.add((row["item_id"], row["annotator"]))
    task_map = state.task_map()
    assigned = state.assignments()
    k = overlap or len(annotators)
    jobs: list[tuple[str, str]] = []
    no_truth = others = 0
    for n, item_id in enumerate(sorted(task_map)):
        if item_id not in truth:
            no_truth += 1
            continue
        who = assigned.get(item_id) or [annotators[(n + j) % len(annotators)] for j in range(min(k, len(annotators)))]
        jobs.extend((item_id, a) for a in who if a in users)
        others += sum(a not in users for a in who)
    todo = [j for j in jobs if j not in done]
    report = SimulationReport(users, 0, len(jobs) - len(todo), no_truth, others)
    with log_path.open("a", encoding="utf-8") as log:
        for n, (item_id, annotator) in enumerate(todo):
            rng = random.Random(int(hashlib.sha256(f"sim:{seed}:{annotator}:{item_id}".encode()).hexdigest()[:16], 16))
            answers = noisy(spec, truth[item_id], noise, rng)
            ann_id = backend.submit(spec, state, item_id, users[annotator], answers, task_id=task_map[item_id])
            log.write(json.dumps({"item_id": item_id, "annotator": annotator, "annotation_id": ann_id}) + "\n")
            log.flush()
            report.submitted += 1
            if progress:
                progress(n + 1, len(todo))
    return report
