"""Synthetic SAD release candidates of any size, shaped exactly like the pipeline's output.

For tests and benchmarks of the layers after the build (validation, releases) that must not
depend on building from dumps. The rows obey every dataset rule; tests inject faults on top.
"""

from __future__ import annotations

import random

import polars as pl

from schemas.sad import DIALOGUES, SPLITS, STRATEGIES, TOPICS, UTTERANCES

_WORDS = (
    "the policy would reduce harm because people respond to incentives and evidence shows that "
    "taxes on sugar changed behaviour in Mexico for example just like tobacco taxes did before why "
    "would anyone oppose a measure that works"
).split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def synthetic_candidate(n_topics: int = 20, chains_per_topic: int = 4, seed: int = 0) -> dict[str, pl.DataFrame]:
    """A valid candidate: ``{"utterances", "dialogues", "topics"}`` polars frames.

    Each topic has a root and ``chains_per_topic`` challengers, each with a chain of 3-6
    utterances (root, X, OP, X, ...). Sizes scale linearly: about ``n_topics * chains_per_topic``
    dialogues and ``n_topics * (1 + 3.5 * chains_per_topic)`` utterances.
    """
    rng = random.Random(seed)
    utt: dict[str, list] = {c.name: [] for c in UTTERANCES.columns}
    dia: dict[str, list] = {c.name: [] for c in DIALOGUES.columns}
    top: dict[str, list] = {c.name: [] for c in TOPICS.columns}
    comment_no = 0
    for t in range(n_topics):
        sub = f"t3_s{t:07d}"
        split = SPLITS[0] if t % 10 < 8 else SPLITS[1] if t % 10 == 8 else SPLITS[2]
        topic = f"topic number {t}: {_sentence(rng, 6)}"
        texts: dict[str, tuple[str, int]] = {}

        def add(uid: str, parent: str | None, is_op: bool, depth: int) -> None:
            text = _sentence(rng, rng.randint(10, 60))
            suggested = sorted(rng.sample(range(len(STRATEGIES)), rng.randint(1, 2)))
            utt["utterance_id"].append(uid)
            utt["submission_id"].append(sub)
            utt["parent_id"].append(parent)
            utt["speaker"].append(int(is_op))
            utt["stance"].append(int(is_op))
            utt["text"].append(text)
            utt["n_words"].append(text.count(" ") + 1)
            utt["depth"].append(depth)
            utt["created_utc"].append(1_500_000_000 + t * 1000 + depth)
            utt["split"].append(split)
            utt["strategies"].append(None)
            utt["strategies_source"].append(None)
            utt["suggested_strategies"].append(suggested)
            utt["suggestion_scores"].append({s.lower(): (0.9 if i in suggested else 0.1) for i, s in enumerate(STRATEGIES)})
            utt["suggestion_source"].append("synthetic")
            utt["author"].append("op" if is_op else f"user{rng.randint(0, 10**6)}")
            texts[uid] = (text, int(is_op))

        add(sub, None, True, 0)
        for _ in range(chains_per_topic):
            path = [sub]
            for depth in range(1, rng.randint(3, 6)):
                comment_no += 1
                uid = f"t1_c{comment_no:08d}"
                add(uid, path[-1], depth % 2 == 0, depth)
                path.append(uid)
            target = path[-1]
            dia["example_id"].append(target)
            dia["submission_id"].append(sub)
            dia["topic"].append(topic)
            dia["split"].append(split)
            dia["context_ids"].append(path)
            dia["history"].append([{"stance": texts[u][1], "text": texts[u][0]} for u in path[:-1]])
            dia["target_id"].append(target)
            dia["target_text"].append(texts[target][0])
            dia["target_stance"].append(texts[target][1])
            dia["target_strategies"].append(None)
            dia["target_suggested_strategies"].append(utt["suggested_strategies"][-1])
            dia["n_turns"].append(len(path))
        top["submission_id"].append(sub)
        top["topic"].append(topic)
        top["topic_key"].append(topic.casefold())
        top["split"].append(split)
        top["n_dialogues"].append(chains_per_topic)
    return {
        "utterances": pl.DataFrame(utt, schema=UTTERANCES.polars_schema()),
        "dialogues": pl.DataFrame(dia, schema=DIALOGUES.polars_schema()),
        "topics": pl.DataFrame(top, schema=TOPICS.polars_schema()),
    }
