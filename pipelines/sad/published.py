"""Source (b): the published SAD release, ``sent.json`` + ``argument.json``, brought in as is.

``sent.json`` maps utterance ids to texts; ``argument.json`` lists examples
``{topic, context: [ids, last = target], attitude: [0/1 per context item]}``. Texts are taken
as published (already cleaned); the word-count rule still applies. The first context id stands
for the submission; a speaker is OP where the attitude is 1. When
``sad.sources.published_strategy_field`` names a field holding, per context item, a list of
strategy names, those become human labels with source ``published``.

Rejected, with the example's position in argument.json: malformed entries, attitude lists of
another length than the context, unknown utterance ids, too few turns, utterances below the
word minimum, an utterance given conflicting attitudes, a target reused with another context,
unknown strategy names.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl

from pipelines.core.errors import InputError
from pipelines.core.readers import load_json_file
from pipelines.core.step import Emitter, SourceUnit
from pipelines.core.text import collapse_whitespace, count_words, repair_surrogates
from pipelines.sad.settings import SadSettings
from schemas.sad import STRATEGIES

SOURCE_NAME = "published"


def is_published_dir(path: Path) -> bool:
    return path.is_dir() and (path / "sent.json").is_file() and (path / "argument.json").is_file()


def read_published(unit: SourceUnit, settings: SadSettings, out: Emitter) -> None:
    folder = Path(unit.path)
    sent_path, arg_path = folder / "sent.json", folder / "argument.json"
    sent = load_json_file(sent_path)
    out.advance(sent_path.stat().st_size)
    args = load_json_file(arg_path)
    out.advance(arg_path.stat().st_size)
    if not isinstance(sent, dict):
        raise InputError(sent_path, f"expected an object {{utterance_id: text}}, got {type(sent).__name__}", "Give the published sent.json")
    if not isinstance(args, list):
        raise InputError(arg_path, f"expected a list of examples, got {type(args).__name__}", "Give the published argument.json")
    rules = settings.rules
    field = settings.sources.published_strategy_field
    src = str(arg_path)
    rejects: list[dict] = []

    def reject(pos: int, record_id: str | None, reason: str, detail: str, raw: object = None) -> None:
        rejects.append(
            {
                "record_id": record_id,
                "drop_reason": reason,
                "detail": detail,
                "source_file": src,
                "line": None,
                "raw": None if raw is None else json.dumps(raw, ensure_ascii=False)[:10_000],
                "example_no": pos,
            }
        )

    stance_of: dict[str, int] = {}
    parent_of: dict[str, str | None] = {}
    depth_of: dict[str, int] = {}
    labels_of: dict[str, list[int]] = {}
    examples: dict[str, dict] = {}
    bad_utterance: dict[str, str] = {}
    for uid, text in sent.items():
        if not isinstance(text, str):
            bad_utterance[uid] = f"text of {uid} is {type(text).__name__}, not a string"
        elif (n := count_words(collapse_whitespace(text))) < rules.min_words:
            bad_utterance[uid] = f"utterance {uid} has {n} words, fewer than {rules.min_words}"
    for pos, ex in enumerate(args):
        if not isinstance(ex, dict) or not isinstance(ex.get("context"), list) or not isinstance(ex.get("attitude"), list):
            reject(pos, None, "malformed_example", f"example #{pos} needs 'topic', 'context' (list) and 'attitude' (list)", ex)
            continue
        context, attitude, topic = ex["context"], ex["attitude"], ex.get("topic")
        target = str(context[-1]) if context else None
        if not isinstance(topic, str) or not topic.strip():
            reject(pos, target, "malformed_example", f"example #{pos} has no topic", ex)
            continue
        if len(attitude) != len(context):
            reject(pos, target, "attitude_mismatch", f"example #{pos}: {len(context)} context ids but {len(attitude)} attitudes", ex)
            continue
        if len(context) < rules.min_utterances:
            reject(pos, target, "too_few_turns", f"example #{pos} has {len(context)} turns, fewer than {rules.min_utterances}", ex)
            continue
        context = [str(c) for c in context]
        unknown = [c for c in context if c not in sent]
        if unknown:
            reject(pos, target, "unknown_utterance", f"example #{pos} refers to ids missing from sent.json: {unknown[:5]}", ex)
            continue
        broken = [c for c in context if c in bad_utterance]
        if broken:
            reject(pos, target, "invalid_utterance", bad_utterance[broken[0]], ex)
            continue
        if any(a not in (0, 1) for a in attitude):
            reject(pos, target, "bad_attitude", f"example #{pos}: attitudes must be 0 or 1, got {attitude}", ex)
            continue
        labels = ex.get(field) if field else None
        if labels is not None:
            if not isinstance(labels, list) or len(labels) != len(context) or any(
                not isinstance(ls, list) or any(s not in STRATEGIES for s in ls) for ls in labels
            ):
                reject(pos, target, "bad_strategies", f"example #{pos}: '{field}' must list strategy names from {list(STRATEGIES)} per context item", ex)
                continue
        parents = [context[i - 1] if i else None for i in range(len(context))]
        conflict = next(
            (c for c, a, parent in zip(context, attitude, parents) if stance_of.get(c, a) != a or parent_of.get(c, parent) != parent),
            None,
        )
        if conflict:
            reject(pos, target, "inconsistent_history", f"example #{pos}: utterance {conflict} has another attitude or parent in an earlier example", ex)
            continue
        assert target is not None
        if target in examples:
            if examples[target]["context_ids"] == context:
                reject(pos, target, "duplicate_example", f"example #{pos} repeats an earlier example", None)
            else:
                reject(pos, target, "conflicting_example", f"example #{pos} ends in {target} like an earlier example but has another context", ex)
            continue
        for i, (c, a, parent) in enumerate(zip(context, attitude, parents)):
            stance_of[c] = a
            parent_of[c] = parent
            depth_of[c] = i
            if labels is not None:
                labels_of[c] = sorted(STRATEGIES.index(s) for s in labels[i])
        examples[target] = {"context_ids": context, "attitude": attitude, "topic": collapse_whitespace(repair_surrogates(topic))}

    used = sorted(stance_of)
    texts = {u: collapse_whitespace(repair_surrogates(sent[u])) for u in used}
    root_of = {ex["context_ids"][-1]: ex["context_ids"][0] for ex in examples.values()}
    submission_of: dict[str, str] = {}
    for ex in examples.values():
        for c in ex["context_ids"]:
            submission_of[c] = ex["context_ids"][0]
    utterances = pl.DataFrame(
        {
            "utterance_id": used,
            "submission_id": [submission_of[u] for u in used],
            "parent_id": [parent_of[u] for u in used],
            "speaker": [stance_of[u] for u in used],
            "stance": [stance_of[u] for u in used],
            "text": [texts[u] for u in used],
            "n_words": [count_words(texts[u]) for u in used],
            "created_utc": [None] * len(used),
            "author": [None] * len(used),
            "depth": [depth_of[u] for u in used],
            "strategies": [labels_of.get(u) for u in used],
            "strategies_source": [SOURCE_NAME if u in labels_of else None for u in used],
        },
        schema_overrides={"created_utc": pl.Int64, "author": pl.String, "strategies": pl.List(pl.Int64), "strategies_source": pl.String, "parent_id": pl.String},
    )
    ids = sorted(examples)
    dialogues = pl.DataFrame(
        {
            "example_id": ids,
            "submission_id": [root_of[e] for e in ids],
            "topic": [examples[e]["topic"] for e in ids],
            "context_ids": [examples[e]["context_ids"] for e in ids],
            "history": [
                [{"stance": stance_of[c], "text": texts[c]} for c in examples[e]["context_ids"][:-1]] for e in ids
            ],
            "target_id": ids,
            "target_text": [texts[e] for e in ids],
            "target_stance": [stance_of[e] for e in ids],
            "n_turns": [len(examples[e]["context_ids"]) for e in ids],
        }
    )
    per_sub = Counter(root_of[e] for e in ids)
    topic_of_sub = {root_of[e]: examples[e]["topic"] for e in ids}
    topics = pl.DataFrame(
        {
            "submission_id": sorted(per_sub),
            "topic": [topic_of_sub[s] for s in sorted(per_sub)],
            "n_dialogues": [per_sub[s] for s in sorted(per_sub)],
        }
    ).with_columns(pl.col("topic").str.to_lowercase().alias("topic_key"))
    out.count("examples_read", len(args))
    out.count("utterances_read", len(sent))
    if rejects:
        out.reject(pl.DataFrame(rejects, infer_schema_length=None).drop("example_no"))
    out.emit("utterances", utterances)
    out.emit("dialogues", dialogues)
    out.emit("topics", topics)
