"""The rejects table: every row a step drops, with the reason. One layout for all pipelines."""

from __future__ import annotations

from schemas.table import Column, Int, String, Table

REJECTS = Table(
    name="rejects",
    primary_key="reject_no",
    description="Rows dropped by a step (quarantine): why, and where they came from.",
    columns=(
        Column("reject_no", Int(64), "Running number within the stage part.", unique=True),
        Column("record_id", String(), "Id of the dropped record when it has one.", nullable=True),
        Column("drop_reason", String(), "Short machine-readable reason, e.g. malformed_json, too_short."),
        Column("detail", String(), "What exactly was wrong and how to fix it.", nullable=True),
        Column("source_file", String(), "Input file the record came from.", nullable=True),
        Column("line", Int(64), "1-based line number in that file.", nullable=True),
        Column("raw", String(), "The raw record (truncated to 10,000 characters) when it could not be parsed.", nullable=True),
    ),
)
