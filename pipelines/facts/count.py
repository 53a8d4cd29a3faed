"""From matched phrases to per-fact document counts, per shard, and the merge of shards.

A fact has a subject and an object, each with alternative surface forms (aliases): a document
*mentions the subject* when it mentions any subject form, likewise the object, and it counts for
``cooccurrence_docs`` when it mentions both (the paper's frequency). Counts are of documents, not
of occurrences.

Per shard (:func:`count_matches`) the counts are split by *checkpoint bucket* when the corpus
carries its training order: bucket ``b`` holds the documents whose step is at most
``checkpoints[b]`` and above ``checkpoints[b - 1]``; documents after the last checkpoint, or
without a step, are in the last bucket ``len(checkpoints)``. :func:`merge_partials` sums the
shards' partial counts (a plain sum: shards are independent) and turns the buckets into
cumulative counts at each checkpoint.
"""

from __future__ import annotations

import bisect
from typing import Sequence

import numpy as np
import polars as pl

from pipelines.core.automaton import RULE_BITS, njit
from pipelines.core.phrases import MatchSettings, PhraseSet

SIDES = ("subject", "object")
PARTIAL_SCHEMA = pl.Schema({
    "fact_id": pl.Int64, "bucket": pl.UInt32,
    "subject_docs": pl.Int64, "object_docs": pl.Int64, "cooccurrence_docs": pl.Int64,
})
COUNT_COLUMNS = ("subject_docs", "object_docs", "cooccurrence_docs")


def phrase_table(facts: pl.DataFrame) -> pl.DataFrame:
    """One row per phrase: ``phrase`` (id), ``fact_id``, ``side`` (0 subject, 1 object), ``text``,
    ``lang``; the main form first, then the aliases."""
    parts = []
    for side, name in enumerate(SIDES):
        forms = facts.select(
            "fact_id", "lang",
            pl.concat_list([pl.col(name), pl.col(f"{name}_aliases").cast(pl.List(pl.String))]).alias("text"),
        ).explode("text")
        parts.append(forms.with_columns(pl.lit(side, dtype=pl.UInt8).alias("side")))
    table = pl.concat(parts).filter(pl.col("text").is_not_null()).sort("fact_id", "side", maintain_order=True)
    return table.with_row_index("phrase").with_columns(pl.col("phrase").cast(pl.UInt32), pl.col("fact_id").cast(pl.Int64))


def compile_phrases(facts: pl.DataFrame, settings: MatchSettings) -> tuple[PhraseSet, pl.DataFrame]:
    """The automaton over every form of every fact, and the phrase -> (fact_id, side) table."""
    table = phrase_table(facts)
    phrases = PhraseSet.build(list(table.select("text", "lang").iter_rows()), settings)
    return phrases, table.select("phrase", "fact_id", "side")


def buckets_of(steps: Sequence[int | None] | None, n_docs: int, checkpoints: Sequence[int]) -> pl.Series:
    """The checkpoint bucket of each document (see the module docstring)."""
    last = len(checkpoints)
    if not checkpoints or steps is None:
        return pl.Series("bucket", [last] * n_docs, dtype=pl.UInt32)
    return pl.Series(
        "bucket", [last if s is None else bisect.bisect_left(checkpoints, s) for s in steps], dtype=pl.UInt32
    )


def count_matches(matches: pl.DataFrame, sides: pl.DataFrame, buckets: pl.Series) -> pl.DataFrame:
    """Per (fact, bucket): documents mentioning the subject, the object, both.

    ``matches``: distinct (doc, phrase) pairs (:meth:`PhraseSet.match`); ``sides``: phrase ->
    fact_id, side; ``buckets``: the bucket of each document of the batch."""
    if matches.height == 0:
        return pl.DataFrame(schema=PARTIAL_SCHEMA)
    doc_buckets = pl.DataFrame({"doc": pl.Series(range(len(buckets)), dtype=pl.UInt32), "bucket": buckets})
    per_doc = (
        matches.join(sides, on="phrase", how="inner")
        .group_by("doc", "fact_id")
        .agg((pl.col("side") == 0).any().alias("s"), (pl.col("side") == 1).any().alias("o"))
        .join(doc_buckets, on="doc", how="left")
    )
    return (
        per_doc.group_by("fact_id", "bucket")
        .agg(
            pl.col("s").sum().cast(pl.Int64).alias("subject_docs"),
            pl.col("o").sum().cast(pl.Int64).alias("object_docs"),
            (pl.col("s") & pl.col("o")).sum().cast(pl.Int64).alias("cooccurrence_docs"),
        )
        .select(PARTIAL_SCHEMA.names())
    )


class FactCounter:
    """Partial counts of batches of documents: :func:`count_matches` over
    :meth:`PhraseSet.match`, or, where the compiled matcher serves (the default), one compiled
    pass from the matcher's (document, pattern, rules) pairs straight to per-fact counts (no
    (document, phrase) table: a pattern such as "english" serves hundreds of facts)."""

    def __init__(self, phrases: PhraseSet, sides: pl.DataFrame) -> None:
        self.phrases = phrases
        self.sides = sides
        self.compiled = phrases.compiled
        if self.compiled is None:
            return
        by_phrase = sides.sort("phrase")  # phrase ids are 0..n-1: row = phrase id
        fact_of = by_phrase.get_column("fact_id").to_numpy()
        side_of = by_phrase.get_column("side").to_numpy().astype(np.int8)
        self.fact_ids, fact_index = np.unique(fact_of, return_inverse=True)
        entries = [(k, RULE_BITS[rule], pid) for k, rules in enumerate(phrases.rules) for rule, pid in rules]
        entry_k = np.fromiter((e[0] for e in entries), dtype=np.int64, count=len(entries))
        self.entry_bit = np.fromiter((e[1] for e in entries), dtype=np.uint8, count=len(entries))
        pids = np.fromiter((e[2] for e in entries), dtype=np.int64, count=len(entries))
        self.entry_fact = fact_index[pids].astype(np.int32)
        self.entry_side = side_of[pids]
        self.entry_off = np.searchsorted(entry_k, np.arange(len(phrases.patterns) + 1)).astype(np.int64)

    def count(self, texts: Sequence[str], buckets: pl.Series) -> pl.DataFrame:
        """Per (fact, bucket) counts of ``texts`` (PARTIAL_SCHEMA; only facts some document
        mentions), ``buckets`` as from :func:`buckets_of`."""
        if self.compiled is None:
            return count_matches(self.phrases.match(texts), self.sides, buckets)
        if not texts or not self.phrases.patterns:
            return pl.DataFrame(schema=PARTIAL_SCHEMA)
        doc, k, bits = self.compiled.find(texts)
        bucket = buckets.to_numpy().astype(np.int64)
        n_buckets = int(bucket.max()) + 1
        counts = _count_kernel(doc, k, bits, bucket, n_buckets, len(self.fact_ids),
                               self.entry_off, self.entry_bit, self.entry_fact, self.entry_side)
        b, f = np.nonzero((counts[:, :, 0] + counts[:, :, 1]) > 0)
        return pl.DataFrame(
            {"fact_id": self.fact_ids[f], "bucket": b, "subject_docs": counts[b, f, 0],
             "object_docs": counts[b, f, 1], "cooccurrence_docs": counts[b, f, 2]},
            schema=PARTIAL_SCHEMA,
        )


@njit(cache=True, nogil=True)
def _count_kernel(doc, k, bits, bucket, n_buckets, n_facts, entry_off, entry_bit, entry_fact, entry_side):
    """counts[bucket, fact, 0/1/2]: documents mentioning the subject, the object, both. The
    pairs of one document are contiguous (the matcher reports them so)."""
    counts = np.zeros((n_buckets, n_facts, 3), dtype=np.int64)
    seen = np.full(2 * n_facts, -1, dtype=np.int64)
    for j in range(doc.shape[0]):
        d = doc[j]
        b = bucket[d]
        found = bits[j]
        for e in range(entry_off[k[j]], entry_off[k[j] + 1]):
            if entry_bit[e] & found:
                f = entry_fact[e]
                s = entry_side[e]
                if seen[2 * f + s] != d:
                    seen[2 * f + s] = d
                    counts[b, f, s] += 1
                    if seen[2 * f + 1 - s] == d:
                        counts[b, f, 2] += 1
    return counts


def add_partials(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Sum partial counts (of batches or shards) per (fact, bucket)."""
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=PARTIAL_SCHEMA)
    return (
        pl.concat(frames)
        .group_by("fact_id", "bucket")
        .agg(pl.col(c).sum() for c in COUNT_COLUMNS)
        .sort("fact_id", "bucket")
        .select(PARTIAL_SCHEMA.names())
    )


def merge_partials(facts: pl.DataFrame, partials: pl.DataFrame, checkpoints: Sequence[int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Totals per fact (every fact, zeros included) and cumulative counts per checkpoint
    (``fact_id``, ``checkpoint`` step, the three counts; empty without checkpoints)."""
    summed = add_partials([partials])
    zero = {c: 0 for c in COUNT_COLUMNS}
    totals = (
        facts.select("fact_id")
        .join(summed.group_by("fact_id").agg(pl.col(c).sum() for c in COUNT_COLUMNS), on="fact_id", how="left")
        .with_columns(pl.col(c).fill_null(v) for c, v in zero.items())
    )
    grid = facts.select("fact_id").join(
        pl.DataFrame({"bucket": list(range(len(checkpoints))), "checkpoint": list(checkpoints)},
                     schema={"bucket": pl.UInt32, "checkpoint": pl.Int64}),
        how="cross",
    )
    at = (
        grid.join(summed, on=["fact_id", "bucket"], how="left")
        .with_columns(pl.col(c).fill_null(0) for c in COUNT_COLUMNS)
        .sort("fact_id", "bucket")
        .with_columns(pl.col(c).cum_sum().over("fact_id") for c in COUNT_COLUMNS)
        .select("fact_id", "checkpoint", *COUNT_COLUMNS)
    )
    return totals, at
