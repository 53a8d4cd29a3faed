"""The hand-written expectations of the bundled CMV sample, usable against any SAD build.

``check_against_expected`` takes plain dicts so that the reference build and the fast pipeline can
be held to exactly the same expectations:

    from tests.pipelines.sad.sample_expectations import SAMPLE_PATHS, check_against_expected
    problems = check_against_expected(dialogues, texts, topics)
    assert not problems, "\n".join(problems)
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parents[3] / "pipelines" / "sad" / "sample"
SAMPLE_PATHS: list[Path] = [
    SAMPLE_DIR / "reddit" / "submissions.jsonl",
    SAMPLE_DIR / "reddit" / "comments.jsonl.zst",
]
EXPECTED_PATH = SAMPLE_DIR / "expected.json"


@lru_cache(maxsize=1)
def load_expected() -> dict:
    return json.loads(EXPECTED_PATH.read_text(encoding="utf-8"))


def check_against_expected(
    dialogues: dict[str, list[str]], texts: dict[str, str], topics: dict[str, str]
) -> list[str]:
    """Human-readable mismatches between a build of the sample and ``expected.json`` (empty: all good).

    ``dialogues``: example_id -> context_ids of every dialogue built; ``texts``: utterance_id ->
    cleaned text of every utterance built; ``topics``: submission_id -> topic of every submission
    that yields at least one dialogue.
    """
    expected = load_expected()
    problems: list[str] = []

    # Dialogues: exactly the expected set, each with exactly the expected context.
    want = expected["dialogues"]
    for example_id in sorted(set(want) - set(dialogues)):
        problems.append(f"missing dialogue {example_id}: expected context {want[example_id]}")
    for example_id in sorted(set(dialogues) - set(want)):
        problems.append(f"unexpected dialogue {example_id}: context {list(dialogues[example_id])}")
    for example_id in sorted(set(want) & set(dialogues)):
        got = list(dialogues[example_id])
        if got != want[example_id]:
            problems.append(f"dialogue {example_id}: context {got} != expected {want[example_id]}")

    # Submissions that must yield nothing.
    for example_id, context in sorted(dialogues.items()):
        if context and context[0] in expected["no_dialogues"]:
            problems.append(f"dialogue {example_id} built from {context[0]}, which must yield no dialogue")

    # Every utterance referenced by a dialogue has a text (the build is self-consistent).
    for example_id, context in sorted(dialogues.items()):
        for uid in context:
            if uid not in texts:
                problems.append(f"dialogue {example_id} refers to {uid}, which has no text")

    # Texts of the utterances that exercise the cleaning rules.
    for uid, text in sorted(expected["texts"].items()):
        if uid not in texts:
            problems.append(f"missing text of {uid}: expected {text!r}")
        elif texts[uid] != text:
            problems.append(f"text of {uid}:\n    got      {texts[uid]!r}\n    expected {text!r}")

    # Topics: exactly the submissions that yield dialogues.
    want_topics = expected["topics"]
    for sid in sorted(set(want_topics) - set(topics)):
        problems.append(f"missing topic of {sid}: expected {want_topics[sid]!r}")
    for sid in sorted(set(topics) - set(want_topics)):
        problems.append(f"unexpected topic of {sid}: {topics[sid]!r}")
    for sid in sorted(set(want_topics) & set(topics)):
        if topics[sid] != want_topics[sid]:
            problems.append(f"topic of {sid}: {topics[sid]!r} != expected {want_topics[sid]!r}")
    return problems
