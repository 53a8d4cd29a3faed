"""Source (a): Pushshift-style Reddit dumps -> one row per submission or comment ("nodes").

Contract of a dump line (newline-delimited JSON; plain, gzip or zstd; any mix of files):

* submission: ``id, title, author, subreddit, created_utc`` required; ``selftext`` (missing = ""),
  ``distinguished`` optional;
* comment: ``id, link_id ("t3_..."), parent_id ("t1_..." / "t3_..."), body, author, subreddit,
  created_utc`` required; ``distinguished`` optional.

Other fields are ignored. Integers given as numeric strings or integral floats are accepted (old
dumps have both). Everything else that is wrong goes to the rejects with the reason, the file
and the line: malformed JSON, a non-object line, a wrong type, a missing field, a bad id, a
line that is neither a submission nor a comment. Rows of other subreddits are dropped with
reason ``other_subreddit``. Nodes are bucketed by submission so that a whole tree always lands
in one partition.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from pipelines.core.errors import TruncatedInputError
from pipelines.core.readers import LineChunk, TruncatedTail, iter_line_chunks, map_chunks_in_order, parse_ndjson
from pipelines.core.step import Emitter, SourceUnit, SplitRows
from pipelines.sad.settings import SadSettings

DUMP_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("subreddit", pa.string()),
        ("author", pa.string()),
        ("created_utc", pa.int64()),
        ("distinguished", pa.string()),
        ("title", pa.string()),
        ("selftext", pa.string()),
        ("body", pa.string()),
        ("link_id", pa.string()),
        ("parent_id", pa.string()),
    ]
)

NODES_SCHEMA = pl.Schema(
    {
        "node_id": pl.String(),  # t3_<id> or t1_<id>
        "is_submission": pl.Boolean(),
        "submission_id": pl.String(),  # t3_<id>
        "parent_id": pl.String(),  # null for submissions
        "author": pl.String(),
        "created_utc": pl.Int64(),
        "distinguished": pl.String(),
        "title": pl.String(),
        "raw_text": pl.String(),  # selftext or body
        "source_file": pl.String(),
        "line": pl.Int64(),
    }
)

_BASE36 = r"^[0-9a-z]+$"
_REQUIRED = {
    True: ("id", "title", "author", "subreddit", "created_utc"),
    False: ("id", "link_id", "parent_id", "body", "author", "subreddit", "created_utc"),
}


def bucket_of_submission(df: pl.DataFrame, partitions: int) -> pl.Series:
    """Partition of each row: the submission id's last four base-36 digits modulo ``partitions``.

    Reddit ids are sequential, so their low digits spread submissions evenly; the rule depends
    on nothing but the id, so every file of a run sends a tree's nodes to the same bucket.
    """
    digits = pl.col("submission_id").str.slice(-4).str.to_integer(base=36, strict=False).fill_null(0)
    return df.select((digits % partitions).cast(pl.Int32).alias("p")).to_series()


def read_reddit_file(unit: SourceUnit, settings: SadSettings, out: Emitter) -> None:
    path = Path(unit.path)
    src = str(path)
    sources = settings.sources
    threads = sources.parse_threads or os.cpu_count() or 1
    subreddit = settings.rules.subreddit

    def parse(item: LineChunk | TruncatedTail) -> _ParsedBatch | TruncatedTail:
        if isinstance(item, TruncatedTail):
            return item
        batch = _parse_batch(item, src, subreddit, use_threads=threads <= 1)
        if batch.nodes is not None:  # conformed and cut by partition here, on the parsing thread
            batch.nodes = out.split("nodes", batch.nodes)
        return batch

    for batch in map_chunks_in_order(parse, iter_line_chunks(path, sources.chunk_bytes, on_compressed=out.advance, max_expansion=sources.max_expansion), threads):
        if isinstance(batch, TruncatedTail):
            if sources.on_truncated == "error":
                raise TruncatedInputError(path, batch.line - 1)
            out.count("truncated_files")
            out.reject(
                pl.DataFrame(
                    {
                        "record_id": [None],
                        "drop_reason": ["truncated_file"],
                        "detail": [f"the file ends inside line {batch.line}; the {batch.line - 1:,} complete lines were kept"],
                        "source_file": [src],
                        "line": [batch.line],
                        "raw": [batch.raw[:40_000].decode("utf-8", errors="replace")[:10_000]],
                    },
                    schema_overrides={"record_id": pl.String},
                )
            )
            continue
        out.count("lines", batch.lines)
        if batch.coerced:
            out.count("values_coerced", batch.coerced)
        for rejects in batch.rejects:
            out.reject(rejects)
        if batch.nodes is not None:
            out.emit("nodes", batch.nodes)


@dataclass
class _ParsedBatch:
    lines: int
    coerced: int
    nodes: pl.DataFrame | SplitRows | None
    rejects: list[pl.DataFrame]


def _parse_batch(chunk: LineChunk, src: str, subreddit: str, use_threads: bool) -> _ParsedBatch:
    parsed = parse_ndjson(chunk, DUMP_SCHEMA, use_threads=use_threads)
    rejects: list[pl.DataFrame] = []
    if parsed.bad:
        rejects.append(
            pl.DataFrame(
                {
                    "record_id": [None] * len(parsed.bad),
                    "drop_reason": [b.reason for b in parsed.bad],
                    "detail": [b.detail for b in parsed.bad],
                    "source_file": [src] * len(parsed.bad),
                    "line": [b.line for b in parsed.bad],
                    "raw": [b.raw for b in parsed.bad],
                },
                schema_overrides={"record_id": pl.String, "line": pl.Int64},
            )
        )
    if parsed.table.num_rows == 0:
        return _ParsedBatch(chunk.n_lines, parsed.coerced, None, rejects)
    raw = pl.from_arrow(parsed.table)
    assert isinstance(raw, pl.DataFrame)
    raw = raw.with_columns(pl.Series("line", parsed.lines, dtype=pl.Int64), pl.lit(src).alias("source_file"))
    nodes, contract_rejects = _to_nodes(raw, subreddit)
    rejects.append(contract_rejects)
    return _ParsedBatch(chunk.n_lines, parsed.coerced, nodes, rejects)


def _to_nodes(raw: pl.DataFrame, subreddit: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Classify rows, check their contract, keep the subreddit; return (nodes, rejects)."""
    is_comment = pl.col("link_id").is_not_null() | pl.col("parent_id").is_not_null() | pl.col("body").is_not_null()
    is_submission = pl.col("title").is_not_null() | pl.col("selftext").is_not_null()
    df = raw.with_columns(
        pl.when(is_comment & is_submission)
        .then(pl.lit("ambiguous_kind"))
        .when(~is_comment & ~is_submission)
        .then(pl.lit("unknown_kind"))
        .alias("_kind_problem"),
        (is_submission & ~is_comment).alias("_is_sub"),
    )
    problems = [pl.col("_kind_problem")]
    details = [
        pl.when(pl.col("_kind_problem") == "ambiguous_kind")
        .then(pl.lit("has fields of both a submission (title/selftext) and a comment (body/link_id/parent_id)"))
        .when(pl.col("_kind_problem") == "unknown_kind")
        .then(pl.lit("neither a submission (no title) nor a comment (no body, link_id, parent_id)"))
    ]
    for is_sub, fields in _REQUIRED.items():
        for f in fields:
            cond = (pl.col("_is_sub") == is_sub) & pl.col(f).is_null()
            kind = "submission" if is_sub else "comment"
            problems.append(pl.when(cond).then(pl.lit("missing_field")))
            details.append(pl.when(cond).then(pl.lit(f"{kind} lacks the required field '{f}'")))
    id_ok = pl.col("id").str.contains(_BASE36)
    link_ok = pl.col("link_id").str.contains(r"^t3_[0-9a-z]+$")
    parent_ok = pl.col("parent_id").str.contains(r"^t[13]_[0-9a-z]+$")
    bad_id = pl.col("id").is_not_null() & ~id_ok
    bad_ref = ~pl.col("_is_sub") & pl.col("link_id").is_not_null() & pl.col("parent_id").is_not_null() & (~link_ok | ~parent_ok)
    problems += [pl.when(bad_id).then(pl.lit("bad_id")), pl.when(bad_ref).then(pl.lit("bad_reference"))]
    details += [
        pl.when(bad_id).then(pl.format("id {} is not a base-36 Reddit id", pl.col("id"))),
        pl.when(bad_ref).then(
            pl.format("link_id {} / parent_id {} are not Reddit fullnames (t3_... / t1_...)", pl.col("link_id"), pl.col("parent_id"))
        ),
    ]
    df = df.with_columns(pl.coalesce(problems).alias("drop_reason"), pl.coalesce(details).alias("detail"))
    other = pl.col("drop_reason").is_null() & (pl.col("subreddit").str.to_lowercase() != subreddit.lower())
    df = df.with_columns(
        pl.when(other).then(pl.lit("other_subreddit")).otherwise(pl.col("drop_reason")).alias("drop_reason"),
        pl.when(other).then(pl.format("subreddit {}", pl.col("subreddit"))).otherwise(pl.col("detail")).alias("detail"),
    )
    rejects = df.filter(pl.col("drop_reason").is_not_null()).select(
        pl.when(pl.col("_is_sub")).then(pl.lit("t3_")).otherwise(pl.lit("t1_")).add(pl.col("id")).alias("record_id"),
        "drop_reason",
        "detail",
        "source_file",
        "line",
        pl.when(pl.col("drop_reason") == "other_subreddit")
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.struct(DUMP_SCHEMA.names).struct.json_encode())
        .alias("raw"),
    )
    good = df.filter(pl.col("drop_reason").is_null())
    nodes = good.select(
        pl.when(pl.col("_is_sub")).then(pl.lit("t3_") + pl.col("id")).otherwise(pl.lit("t1_") + pl.col("id")).alias("node_id"),
        pl.col("_is_sub").alias("is_submission"),
        pl.when(pl.col("_is_sub")).then(pl.lit("t3_") + pl.col("id")).otherwise(pl.col("link_id")).alias("submission_id"),
        pl.when(pl.col("_is_sub")).then(pl.lit(None, dtype=pl.String)).otherwise(pl.col("parent_id")).alias("parent_id"),
        "author",
        "created_utc",
        "distinguished",
        "title",
        pl.when(pl.col("_is_sub")).then(pl.col("selftext").fill_null("")).otherwise(pl.col("body")).alias("raw_text"),
        "source_file",
        "line",
    )
    return nodes, rejects
