"""Build SAD dialogues from the nodes of one partition (whole submission trees).

The rules (each a setting in :class:`pipelines.sad.settings.SadRules`):

1. duplicate ids keep their first occurrence; comments whose submission or parent comment is
   absent are rejected (``submission_missing``, ``parent_missing``, ``parent_mismatch``);
2. topic = title without the ``CMV:``/``CMV -`` prefix, entities unescaped, whitespace collapsed;
3. the submission's selftext is the root utterance (OP); the moderators' footnote is removed;
4. every utterance is cleaned: HTML entities unescaped, quote lines removed, URLs replaced,
   whitespace collapsed; words are the space-separated tokens of the result;
5. invalid utterances ([deleted]/[removed]/empty text, [deleted] author, bots, moderator-
   distinguished, fewer than ``min_words`` words) are rejected with their reason and end the
   branch before them;
6. chains alternate root (OP) -> challenger X (X != OP) -> OP -> X ...; every valid child by
   the expected speaker continues its own branch; each maximal chain of at least
   ``min_utterances`` utterances is one example whose last utterance is the target.

The chain walk is vectorised: one numpy step per tree level over the frontier of open chains.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.core.cleaning import clean_texts
from pipelines.core.step import StepResult
from pipelines.core.text import collapse_whitespace_expr, cut_footnote, unescape_html_expr, update_where
from pipelines.sad.settings import SadRules, SadSettings

OP, CHALLENGER = 1, 0


def clean_utterances(nodes: pl.DataFrame, rules: SadRules) -> pl.DataFrame:
    """Add ``text`` (cleaned) and ``n_words`` to nodes with ``raw_text`` and ``is_submission``.

    The footnote is cut from the submissions that hold a line of underscores; the other rules
    run in one compiled pass per text (:func:`pipelines.core.cleaning.clean_texts`).
    """
    if rules.strip_footnote:
        raw = pl.col("raw_text")
        has_line = pl.col("is_submission") & raw.str.contains("_" * rules.footnote_min_underscores, literal=True)
        cut = partial(cut_footnote, min_underscores=rules.footnote_min_underscores)
        nodes = update_where(nodes, "raw_text", has_line, raw.map_elements(cut, return_dtype=pl.String))
    text, n_words = clean_texts(nodes.get_column("raw_text").alias("text"), rules.unescape_html, rules.drop_quote_lines, rules.url_placeholder)
    return nodes.with_columns(text, n_words)


def topic_expr(rules: SadRules) -> pl.Expr:
    title = pl.col("title").str.replace(rules.topic_prefix_pattern, "")
    if rules.unescape_title_entities:
        title = unescape_html_expr(title)
    return collapse_whitespace_expr(title)


def invalid_reason_expr(rules: SadRules) -> pl.Expr:
    """The first rule an utterance breaks (null when valid)."""
    return pl.coalesce(
        pl.when(pl.col("text").is_in(list(rules.invalid_texts))).then(pl.lit("deleted_or_removed")),
        pl.when(pl.col("text") == "").then(pl.lit("empty_text")),
        pl.when(pl.col("author") == rules.deleted_author).then(pl.lit("deleted_author")),
        pl.when(pl.col("author").is_in(list(rules.bots))).then(pl.lit("bot_author")),
        pl.when(pl.col("distinguished").is_in(list(rules.invalid_distinguished))).then(pl.lit("moderator")),
        pl.when(pl.col("n_words") < rules.min_words).then(pl.lit("too_short")),
        pl.when(pl.col("is_submission") & (pl.col("topic") == "")).then(pl.lit("empty_topic")),
    )


def _reject(df: pl.DataFrame, reason: str | pl.Expr, detail: pl.Expr) -> pl.DataFrame:
    return df.select(
        pl.col("node_id").alias("record_id"),
        (pl.lit(reason) if isinstance(reason, str) else reason).alias("drop_reason"),
        detail.alias("detail"),
        "source_file",
        "line",
    )


def build_dialogues(frames: dict[str, pl.DataFrame], settings: SadSettings) -> StepResult:
    rules = settings.rules
    nodes = frames["nodes"]
    counters = {"nodes": nodes.height}
    rejects: list[pl.DataFrame] = []

    # 1. duplicates and broken references
    first = nodes["node_id"].is_first_distinct()
    if not first.all():
        rejects.append(_reject(nodes.filter(~first), "duplicate_id", pl.lit("the id was seen earlier in the input; the first copy is kept")))
        nodes = nodes.filter(first)
    subs = nodes.filter(pl.col("is_submission"))
    comment_ids = nodes.filter(~pl.col("is_submission"))["node_id"]
    problem = pl.coalesce(
        pl.when(~pl.col("submission_id").is_in(subs["node_id"].implode())).then(pl.lit("submission_missing")),
        pl.when(pl.col("parent_id").str.starts_with("t1_") & ~pl.col("parent_id").is_in(comment_ids.implode())).then(
            pl.lit("parent_missing")
        ),
        pl.when(pl.col("parent_id").str.starts_with("t3_") & (pl.col("parent_id") != pl.col("submission_id"))).then(
            pl.lit("parent_mismatch")
        ),
    )
    comments = nodes.filter(~pl.col("is_submission")).with_columns(problem.alias("_problem"))
    orphans = comments.filter(pl.col("_problem").is_not_null())
    if orphans.height:
        rejects.append(
            _reject(
                orphans,
                pl.col("_problem"),
                pl.when(pl.col("_problem") == "submission_missing")
                .then(pl.format("its submission {} is not in the input (give the submissions file too)", pl.col("submission_id")))
                .when(pl.col("_problem") == "parent_missing")
                .then(pl.format("its parent comment {} is not in the input; its subtree cannot be placed", pl.col("parent_id")))
                .otherwise(pl.format("parent {} is a different submission than link_id {}", pl.col("parent_id"), pl.col("submission_id"))),
            )
        )
    comments = comments.filter(pl.col("_problem").is_null()).drop("_problem")

    # 2-5. topics, cleaning, validity
    nodes = pl.concat([subs, comments])
    nodes = clean_utterances(nodes, rules).with_columns(
        pl.when(pl.col("is_submission")).then(topic_expr(rules)).alias("topic")
    )
    nodes = nodes.with_columns(invalid_reason_expr(rules).alias("_invalid"))
    invalid = nodes.filter(pl.col("_invalid").is_not_null())
    if invalid.height:
        rejects.append(
            _reject(
                invalid,
                pl.col("_invalid"),
                pl.when(pl.col("_invalid") == "too_short")
                .then(pl.format("{} words, fewer than {}", pl.col("n_words"), pl.lit(rules.min_words)))
                .otherwise(pl.format("author={} distinguished={} text={}", pl.col("author"), pl.col("distinguished"), pl.col("text").str.slice(0, 60))),
            )
        )
    valid = nodes.filter(pl.col("_invalid").is_null()).drop("_invalid")
    counters["valid_submissions"] = int(valid["is_submission"].sum())
    counters["valid_comments"] = valid.height - counters["valid_submissions"]

    # 6. chains, one tree level per iteration
    chains, walk = _walk_chains(valid, rules.min_utterances, counters)
    counters["valid_comments_unused"] = int((~walk.used & ~valid.get_column("is_submission").to_numpy()).sum())
    rows = np.flatnonzero(walk.used)
    op = valid.get_column("author").gather(pl.Series(walk.root[rows])).alias("op")
    utterances = (
        valid[pl.Series(rows)]
        .with_columns(op, pl.Series("depth", walk.depth[rows], dtype=pl.Int32))
        .with_columns(
            pl.when(pl.col("author") == pl.col("op")).then(OP).otherwise(CHALLENGER).cast(pl.Int64).alias("stance"),
        )
        .select(
            pl.col("node_id").alias("utterance_id"),
            "submission_id",
            "parent_id",
            pl.col("stance").alias("speaker"),
            "stance",
            "text",
            "n_words",
            "created_utc",
            "author",
            "depth",
        )
    )
    dialogues, topics = _assemble_dialogues(chains, utterances, valid)
    utterances = utterances.sort("utterance_id")
    utterances = utterances.with_columns(
        pl.lit(None, dtype=pl.List(pl.Int64)).alias("strategies"), pl.lit(None, dtype=pl.String).alias("strategies_source")
    )
    counters["dialogues"] = dialogues.height
    counters["utterances"] = utterances.height
    rej = pl.concat(rejects, how="diagonal_relaxed") if rejects else None
    return StepResult({"utterances": utterances, "dialogues": dialogues, "topics": topics}, rej, counters)


_CHAINS_SCHEMA = {"node_id": pl.String, "submission_id": pl.String, "op": pl.String, "challenger": pl.String, "path": pl.List(pl.String)}


@dataclass(frozen=True)
class _Walk:
    """Per row of ``valid``: on a kept chain (``used``), its tree depth and its root's row."""

    used: np.ndarray
    depth: np.ndarray
    root: np.ndarray


def _walk_chains(valid: pl.DataFrame, min_utterances: int, counters: dict[str, int]) -> tuple[pl.DataFrame, _Walk]:
    """Every maximal OP/challenger chain of at least ``min_utterances`` utterances.

    One step per tree level over the frontier of open chains, on row numbers (numpy): the
    children of each frontier node come from an index of children sorted by parent; a chain
    ends where no child by the expected speaker continues it. A chain follows tree edges, so its
    path is its last node's ancestors, rebuilt at the end from parent row numbers.
    """
    n = valid.height
    ids = valid.get_column("node_id")
    row_of = ids.to_frame().with_row_index("_row")
    parent = (
        valid.select("parent_id")
        .join(row_of, left_on="parent_id", right_on="node_id", how="left", maintain_order="left")
        .get_column("_row")
        .fill_null(-1)
        .cast(pl.Int64)
        .to_numpy()
        .copy()
    )
    is_root = valid.get_column("is_submission").to_numpy()
    parent[is_root] = -1
    author = valid.select(pl.col("author").cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1)).to_series().to_numpy()
    # children sorted by parent: those of row r are kids[start[r]:start[r + 1]]
    is_child = parent >= 0
    child_rows = np.flatnonzero(is_child)
    kids = child_rows[np.argsort(parent[child_rows], kind="stable")]
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(parent[child_rows], minlength=n), out=start[1:])

    frontier = np.flatnonzero(is_root)
    root = frontier.copy()
    depth_of = np.full(n, -1, dtype=np.int32)
    root_of = np.full(n, -1, dtype=np.int64)
    challenger = np.full(frontier.size, -1, dtype=np.int64)  # row of the challenger's first turn
    ends: list[np.ndarray] = []
    roots: list[np.ndarray] = []
    challengers: list[np.ndarray] = []
    lengths: list[int] = []
    depth = 0
    while frontier.size:
        depth_of[frontier] = depth
        root_of[frontier] = root
        depth += 1
        count = start[frontier + 1] - start[frontier]
        owner = np.repeat(np.arange(frontier.size), count)  # frontier position of each child
        first = np.repeat(start[frontier] - (np.cumsum(count) - count), count)
        child = kids[first + np.arange(owner.size)]
        speaker = author[child]
        op = author[root[owner]]
        if depth == 1:  # the challenger is whoever opens the branch, as long as it is not OP
            ok = (speaker >= 0) & (op >= 0) & (speaker != op)
            next_challenger = child
        else:
            expected = op if depth % 2 == 0 else author[challenger[owner]]
            ok = (speaker >= 0) & (speaker == expected)
            next_challenger = challenger[owner]
        continued = np.zeros(frontier.size, dtype=bool)
        continued[owner[ok]] = True
        ends.append(frontier[~continued])
        roots.append(root[~continued])
        challengers.append(challenger[~continued])
        lengths.append(depth)
        frontier, root, challenger = child[ok], root[owner[ok]], next_challenger[ok]
    counters["max_depth"] = depth - 1
    used = np.zeros(n, dtype=bool)
    if not ends:
        counters["chains_too_short"] = 0
        return pl.DataFrame(schema=_CHAINS_SCHEMA), _Walk(used, depth_of, root_of)
    size = np.concatenate([np.full(e.size, length, dtype=np.int64) for e, length in zip(ends, lengths)])
    end, root, challenger = np.concatenate(ends), np.concatenate(roots), np.concatenate(challengers)
    keep = size >= min_utterances
    counters["chains_too_short"] = int((~keep).sum())
    end, root, challenger, size = end[keep], root[keep], challenger[keep], size[keep]
    # paths: fill each chain's slots from its last node up through the parents
    offsets = np.zeros(end.size + 1, dtype=np.int64)
    np.cumsum(size, out=offsets[1:])
    flat = np.empty(int(offsets[-1]), dtype=np.int64)
    node = end.copy()
    for k in range(int(size.max()) if size.size else 0):
        active = size > k
        flat[offsets[:-1][active] + size[active] - 1 - k] = node[active]
        node[active] = parent[node[active]]
    # offsets from their buffer: pa.array() would import pandas (0.24 s in every worker)
    list_offsets = pa.Array.from_buffers(pa.int64(), offsets.size, [None, pa.py_buffer(offsets)])
    path = pl.from_arrow(pa.LargeListArray.from_arrays(list_offsets, ids.gather(pl.Series(flat)).to_arrow()))
    used[flat] = True
    authors = valid.get_column("author")
    chains = pl.DataFrame(
        {
            "node_id": ids.gather(pl.Series(end)),
            "submission_id": valid.get_column("submission_id").gather(pl.Series(end)),
            "op": authors.gather(pl.Series(root)),
            "challenger": authors.gather(pl.Series(np.where(challenger >= 0, challenger, 0))).set(pl.Series(challenger < 0), None),
            "path": path,
        },
        schema=_CHAINS_SCHEMA,
    )
    return chains, _Walk(used, depth_of, root_of)


def _assemble_dialogues(chains: pl.DataFrame, utterances: pl.DataFrame, valid: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    topics_of = valid.filter(pl.col("is_submission")).select(pl.col("node_id").alias("submission_id"), "topic")
    base = chains.select(
        pl.col("node_id").alias("example_id"),
        "submission_id",
        pl.col("path").alias("context_ids"),
        pl.col("node_id").alias("target_id"),
        pl.col("path").list.len().cast(pl.Int32).alias("n_turns"),
    ).join(topics_of, on="submission_id", how="left")
    turns = (
        base.select("example_id", "context_ids")
        .with_columns(pl.int_ranges(pl.col("context_ids").list.len()).alias("pos"))
        .explode("context_ids", "pos")
        .join(utterances.select(pl.col("utterance_id").alias("context_ids"), "stance", "text"), on="context_ids", how="left")
    )
    n = base.select("example_id", "n_turns")
    turns = turns.join(n, on="example_id")
    history = (
        turns.filter(pl.col("pos") < pl.col("n_turns") - 1)
        .sort("example_id", "pos")
        .group_by("example_id", maintain_order=True)
        .agg(pl.struct("stance", "text").alias("history"))
    )
    target = turns.filter(pl.col("pos") == pl.col("n_turns") - 1).select(
        "example_id", pl.col("text").alias("target_text"), pl.col("stance").alias("target_stance")
    )
    dialogues = (
        base.join(history, on="example_id", how="left")
        .join(target, on="example_id", how="left")
        .sort("example_id")
        .select("example_id", "submission_id", "topic", "context_ids", "history", "target_id", "target_text", "target_stance", "n_turns")
    )
    topics = (
        dialogues.group_by("submission_id")
        .agg(pl.col("topic").first(), pl.len().cast(pl.Int32).alias("n_dialogues"))
        .with_columns(pl.col("topic").str.to_lowercase().alias("topic_key"))
        .sort("submission_id")
        .select("submission_id", "topic", "topic_key", "n_dialogues")
    )
    return dialogues, topics
