"""Final SAD step: splits by topic, and the tables exactly as the schemas declare them.

Split rule: submissions whose topics are equal after lowercasing form one group; the group's
split comes from a SHA-256 of ``"<salt>:<smallest submission id of the group>"`` mapped to
[0, 1) and cut at the configured fractions (default 80/10/10). A topic therefore never spans two
splits, and the assignment depends on nothing but the ids and the salt (not on partitioning,
order, or which other submissions are present).
"""

from __future__ import annotations

import hashlib

import polars as pl

from pipelines.core.step import StepResult
from pipelines.sad.settings import SadSettings, SadSplits
from schemas.sad import DIALOGUES, TOPICS, UTTERANCES


def split_for(anchor_id: str, splits: SadSplits) -> str:
    u = int.from_bytes(hashlib.sha256(f"{splits.salt}:{anchor_id}".encode()).digest()[:8], "big") / 2**64
    if u < splits.train:
        return "train"
    if u < splits.train + splits.validation:
        return "validation"
    return "test"


def topic_splits(topics: pl.DataFrame, splits: SadSplits, keys: pl.Series | None = None) -> pl.DataFrame:
    """``submission_id -> split`` for every topic row (all partitions), or only for the rows whose
    ``topic_key`` is in ``keys``: a group's anchor needs every partition's topics, but only the
    groups a partition holds need hashing (one eighth of them in an 8-partition build)."""
    anchors = topics.group_by("topic_key").agg(pl.col("submission_id").min().alias("anchor"))
    if keys is not None:
        anchors = anchors.filter(pl.col("topic_key").is_in(keys.implode()))
        topics = topics.filter(pl.col("topic_key").is_in(keys.implode()))
    anchors = anchors.with_columns(
        pl.col("anchor").map_elements(lambda a: split_for(a, splits), return_dtype=pl.String).alias("split")
    )
    return topics.join(anchors, on="topic_key", how="left").select("submission_id", "split")


def assemble(frames: dict[str, pl.DataFrame], settings: SadSettings) -> StepResult:
    split_map = topic_splits(frames["all_topics"], settings.splits, keys=frames["topics"].get_column("topic_key"))
    utterances = frames["utterances"].join(split_map, on="submission_id", how="left")
    targets = utterances.select(
        pl.col("utterance_id").alias("target_id"),
        pl.col("strategies").alias("target_strategies"),
        pl.col("suggested_strategies").alias("target_suggested_strategies"),
    )
    dialogues = frames["dialogues"].join(split_map, on="submission_id", how="left").join(targets, on="target_id", how="left")
    topics = frames["topics"].join(split_map, on="submission_id", how="left")
    counters = {f"dialogues_{k}": int(v) for k, v in dialogues["split"].value_counts().iter_rows()}
    return StepResult(
        {
            "utterances": UTTERANCES.conform(utterances.sort("utterance_id")),
            "dialogues": DIALOGUES.conform(dialogues.sort("example_id")),
            "topics": TOPICS.conform(topics.sort("submission_id")),
        },
        None,
        counters,
    )
