"""Synthetic SAD release candidates of any size, shaped exactly like the pipeline's output.

For tests and benchmarks of the layers after the build (validation, releases) that must not
depend on building from dumps. The rows obey every dataset rule; tests inject faults on top.

Everything is vectorised (numpy + polars): a full-size candidate (392,822 dialogues) builds in
a few seconds.

Shape of a topic: a root (the submission, OP) and its dialogues. Dialogue ``k`` of a topic has
``n_turns`` uniform in 3..6 (root, challenger, OP, ...). With ``branching = 0`` every dialogue is a
separate top-level thread; with ``branching = b`` each dialogue after a topic's first one, with
probability ``b``, branches from the previous dialogue of its topic: it shares that dialogue's
turns up to the deepest turn both can share (at least root + first challenger turn) and only
its last turn(s) are new. Real SAD has 1.84 utterances per dialogue (722,812 for 392,822
dialogues); :data:`SAD_FULL_SIZE` and :func:`sad_like_candidate` reproduce those counts.
"""

from __future__ import annotations

import random

import numpy as np
import polars as pl

from schemas.sad import DIALOGUES, SPLITS, STRATEGIES, TOPICS, UTTERANCES

_WORDS = (
    "the policy would reduce harm because people respond to incentives and evidence shows that "
    "taxes on sugar changed behaviour in Mexico for example just like tobacco taxes did before why "
    "would anyone oppose a measure that works"
).split()

MIN_TURNS, MAX_TURNS = 3, 6  # n_turns of a dialogue before branching
_MEAN_NEW_NOT_BRANCHING = (MIN_TURNS + MAX_TURNS) / 2 - 1  # new utterances of a fresh thread: 3.5
_MEAN_NEW_BRANCHING = 1.625  # E[max(0, L_k - L_{k-1})] + 1 for independent uniform 3..6 lengths

# Counts of the real SAD release.
SAD_FULL_SIZE = {"topics": 20_619, "dialogues": 392_822, "utterances": 722_812}


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def branching_for(n_topics: int, n_dialogues: int, n_utterances: int) -> float:
    """The ``branching`` whose expected utterance count is ``n_utterances`` (clipped to [0, 1])."""
    fresh = n_topics * (1 + _MEAN_NEW_NOT_BRANCHING)  # roots + first dialogue of each topic
    rest = n_dialogues - n_topics
    if rest <= 0:
        return 0.0
    per_rest = (n_utterances - fresh) / rest
    b = (_MEAN_NEW_NOT_BRANCHING - per_rest) / (_MEAN_NEW_NOT_BRANCHING - _MEAN_NEW_BRANCHING)
    return float(min(1.0, max(0.0, b)))


def sad_like_candidate(scale: float = 1.0, seed: int = 0, **kwargs) -> dict[str, pl.DataFrame]:
    """A candidate with the real SAD's counts times ``scale`` (utterances within about 0.5%)."""
    n_topics = max(1, round(SAD_FULL_SIZE["topics"] * scale))
    n_dialogues = max(n_topics, round(SAD_FULL_SIZE["dialogues"] * scale))
    b = branching_for(n_topics, n_dialogues, round(SAD_FULL_SIZE["utterances"] * scale))
    return synthetic_candidate(n_topics, seed=seed, n_dialogues=n_dialogues, branching=b, **kwargs)


def _text_pool(rng: np.random.Generator, size: int) -> list[str]:
    """Random texts of 9..59 words (a unique last word is appended per utterance)."""
    py = random.Random(int(rng.integers(0, 2**31)))
    lengths = rng.integers(9, 60, size)
    return [_sentence(py, int(n)) for n in lengths]


def synthetic_candidate(
    n_topics: int = 20,
    chains_per_topic: int = 4,
    seed: int = 0,
    *,
    n_dialogues: int | None = None,
    branching: float = 0.0,
    labelled: float = 0.0,
) -> dict[str, pl.DataFrame]:
    """A valid candidate: ``{"utterances", "dialogues", "topics"}`` polars frames.

    Each topic has a root and ``chains_per_topic`` dialogues (``n_dialogues`` in all, if given,
    spread evenly over the topics), each a chain of 3-6 utterances (root, X, OP, X, ...). With
    ``branching = 0`` sizes scale linearly: ``n_topics * chains_per_topic`` dialogues and about
    ``n_topics * (1 + 3.5 * chains_per_topic)`` utterances; ``branching`` (probability that a
    dialogue branches from the previous one of its topic) lowers the utterances per dialogue
    (see :func:`branching_for`). ``labelled`` is the fraction of utterances carrying human
    strategy labels (``strategies``; the default 0 leaves every utterance unlabelled).
    """
    if not 0.0 <= branching <= 1.0:
        raise ValueError(f"branching must be in [0, 1], got {branching}")
    rng = np.random.default_rng(seed)
    T = int(n_topics)
    N = T * int(chains_per_topic) if n_dialogues is None else int(n_dialogues)
    if N < T:
        raise ValueError(f"need at least one dialogue per topic: {N} dialogues for {T} topics")

    # ------------------------------------------------------------------ dialogue structure
    per_topic = np.full(T, N // T, dtype=np.int64) + (np.arange(T) < N % T)
    topic_of = np.repeat(np.arange(T), per_topic)  # topic of each dialogue, grouped
    first = np.ones(N, dtype=bool)
    first[1:] = topic_of[1:] != topic_of[:-1]
    L = rng.integers(MIN_TURNS, MAX_TURNS + 1, N)  # n_turns
    branch = ~first & (rng.random(N) < branching)
    prev_L = np.concatenate([[0], L[:-1]])
    shared = np.where(branch, np.minimum(prev_L, L) - 1, 1)  # turns shared with the previous dialogue
    depth = np.arange(MAX_TURNS)
    new = (depth[None, :] >= shared[:, None]) & (depth[None, :] < L[:, None])  # [N, depth]
    # comment numbers (1-based) in row-major order of the new cells
    n_comments = int(new.sum())
    number = np.zeros(new.shape, dtype=np.int64)
    number[new] = np.arange(1, n_comments + 1)
    # a shared cell is the same node as in the previous dialogue: forward-fill every depth column
    rows = np.where(new, np.arange(N)[:, None], -1)
    rows = np.maximum.accumulate(rows, axis=0)
    node = np.take_along_axis(number, np.maximum(rows, 0), axis=0)  # comment number per cell
    node[:, 0] = 0  # depth 0: the root (submission)
    node[depth[None, :] >= L[:, None]] = -1  # beyond the chain

    # ------------------------------------------------------------------ topics
    t_idx = np.arange(T)
    topic_split = np.where(t_idx % 10 < 8, SPLITS[0], np.where(t_idx % 10 == 8, SPLITS[1], SPLITS[2]))
    sub_ids = pl.Series("submission_id", t_idx).cast(pl.String).str.zfill(7)
    sub_ids = ("t3_s" + sub_ids).alias("submission_id")
    pool6 = [_sentence(random.Random(seed * 7919 + i), 6) for i in range(min(T, 4096))]
    topic_text = [f"topic number {t}: {pool6[t % len(pool6)]}" for t in range(T)]
    topics = pl.DataFrame(
        {
            "submission_id": sub_ids,
            "topic": topic_text,
            "topic_key": [s.casefold() for s in topic_text],
            "split": topic_split,
            "n_dialogues": per_topic,
        },
        schema=TOPICS.polars_schema(),
    )

    # ------------------------------------------------------------------ utterances
    c_k, c_d = np.nonzero(new)  # row-major: sorted by comment number, hence by topic
    c_topic = topic_of[c_k]
    n_utt = T + n_comments
    # rows: each topic's root, then its comments in creation order
    comments_before = np.concatenate([[0], np.cumsum(np.bincount(c_topic, minlength=T))[:-1]])
    row_of_root = t_idx + comments_before
    row_of_no = np.empty(n_comments + 1, dtype=np.int64)
    row_of_no[1:] = np.arange(1, n_comments + 1) + c_topic  # (c - 1) comments + (topic + 1) roots before
    u_topic = np.empty(n_utt, dtype=np.int64)
    u_depth = np.zeros(n_utt, dtype=np.int64)
    u_no = np.zeros(n_utt, dtype=np.int64)
    u_parent_no = np.full(n_utt, -1, dtype=np.int64)
    u_topic[row_of_root] = t_idx
    r = row_of_no[1:]
    u_topic[r] = c_topic
    u_depth[r] = c_d
    u_no[r] = np.arange(1, n_comments + 1)
    u_parent_no[r] = node[c_k, c_d - 1]
    is_op = u_depth % 2 == 0

    pool = _text_pool(rng, 8192)
    text_idx = rng.integers(0, len(pool), n_utt)
    combos = [[i] for i in range(len(STRATEGIES))] + [
        [i, j] for i in range(len(STRATEGIES)) for j in range(i + 1, len(STRATEGIES))
    ]
    n_single = len(STRATEGIES)
    two = rng.random(n_utt) < 0.5
    pair = n_single + rng.integers(0, len(combos) - n_single, n_utt)
    combo_idx = np.where(two, pair, rng.integers(0, n_single, n_utt))
    combo_series = pl.Series("c", combos, dtype=pl.List(pl.Int64))
    score_rows = [{s.lower(): (0.9 if i in c else 0.1) for i, s in enumerate(STRATEGIES)} for c in combos]
    score_series = pl.Series("s", score_rows, dtype=UTTERANCES.column("suggestion_scores").dtype.polars())
    is_labelled = rng.random(n_utt) < labelled

    def comment_id(no: pl.Expr) -> pl.Expr:
        return pl.lit("t1_c") + no.cast(pl.String).str.zfill(8)

    sub_of = sub_ids.gather(u_topic)
    base = pl.DataFrame(
        {
            "topic": u_topic,
            "no": u_no,
            "parent_no": u_parent_no,
            "depth": u_depth,
            "is_op": is_op,
            "text_idx": text_idx,
            "combo": combo_idx,
            "labelled": is_labelled,
            "author_no": rng.integers(0, 10**6 + 1, n_utt),
            "submission_id": sub_of,
            "split": topic_split[u_topic],
        }
    )
    pool_s = pl.Series("pool", pool, dtype=pl.String)
    utt = base.select(
        pl.when(pl.col("no") == 0)
        .then(pl.col("submission_id"))
        .otherwise(comment_id(pl.col("no")))
        .alias("utterance_id"),
        pl.col("submission_id"),
        pl.when(pl.col("parent_no") < 0)
        .then(None)
        .when(pl.col("parent_no") == 0)
        .then(pl.col("submission_id"))
        .otherwise(comment_id(pl.col("parent_no")))
        .alias("parent_id"),
        pl.col("is_op").cast(pl.Int64).alias("speaker"),
        pl.col("is_op").cast(pl.Int64).alias("stance"),
        # a pool text (9-59 words) plus a word unique to the row: 10-60 words, distinct texts
        (pl.lit(pool_s).gather(pl.col("text_idx")) + pl.lit(" n") + pl.int_range(pl.len()).cast(pl.String)).alias(
            "text"
        ),
        pl.lit(0, dtype=pl.Int32).alias("n_words"),  # filled below
        pl.col("depth").cast(pl.Int32),
        (1_500_000_000 + pl.col("topic") * 1000 + pl.col("depth")).alias("created_utc"),
        pl.col("split"),
        pl.when(pl.col("labelled"))
        .then(pl.lit(combo_series).gather(pl.col("combo")))
        .otherwise(None)
        .alias("strategies"),
        pl.when(pl.col("labelled")).then(pl.lit("synthetic-annotator")).otherwise(None).alias("strategies_source"),
        pl.lit(combo_series).gather(pl.col("combo")).alias("suggested_strategies"),
        pl.lit(score_series).gather(pl.col("combo")).alias("suggestion_scores"),
        pl.lit("synthetic").alias("suggestion_source"),
        pl.when(pl.col("is_op"))
        .then(pl.lit("op"))
        .otherwise(pl.lit("user") + pl.col("author_no").cast(pl.String))
        .alias("author"),
    ).with_columns((pl.col("text").str.count_matches(" ", literal=True) + 1).cast(pl.Int32).alias("n_words"))
    utterances = utt.select([pl.col(n).cast(t) for n, t in UTTERANCES.polars_schema().items()])

    # ------------------------------------------------------------------ dialogues
    cell_k, cell_d = np.nonzero(node >= 0)
    cell_no = node[cell_k, cell_d]
    cell_row = np.where(cell_no == 0, row_of_root[topic_of[cell_k]], row_of_no[np.maximum(cell_no, 0)])
    is_last = cell_d == L[cell_k] - 1

    u_small = utterances.select("utterance_id", "stance", "text", "suggested_strategies", "strategies")
    cells = pl.DataFrame(
        {
            "k": cell_k,
            "last": is_last,
            "uid": u_small.get_column("utterance_id").gather(cell_row),
            "stance": u_small.get_column("stance").gather(cell_row),
            "text": u_small.get_column("text").gather(cell_row),
        }
    )
    per_dialogue = cells.group_by("k", maintain_order=True).agg(
        pl.col("uid").alias("context_ids"),
        pl.struct("stance", "text").filter(~pl.col("last")).alias("history"),
    )
    t_rows = cell_row[is_last]  # one per dialogue, in dialogue order
    dialogues = pl.DataFrame(
        {
            "example_id": u_small.get_column("utterance_id").gather(t_rows),
            "submission_id": sub_ids.gather(topic_of),
            "topic": topics.get_column("topic").gather(topic_of),
            "split": topic_split[topic_of],
            "context_ids": per_dialogue.get_column("context_ids"),
            "history": per_dialogue.get_column("history"),
            "target_id": u_small.get_column("utterance_id").gather(t_rows),
            "target_text": u_small.get_column("text").gather(t_rows),
            "target_stance": u_small.get_column("stance").gather(t_rows),
            "target_strategies": u_small.get_column("strategies").gather(t_rows),
            "target_suggested_strategies": u_small.get_column("suggested_strategies").gather(t_rows),
            "n_turns": L,
        }
    )
    dialogues = dialogues.select([pl.col(n).cast(t) for n, t in DIALOGUES.polars_schema().items()])
    return {"utterances": utterances, "dialogues": dialogues, "topics": topics}
