"""What a release is made of: :class:`ReleaseSpec` (data + schemas) and :class:`CardText` (prose).

The caller (a dataset's release command) assembles both; :func:`releases.writer.write_release`
turns them into files. Everything the card says beyond the prose (features, counts, how to
load) is derived from the spec, so it cannot drift from the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import polars as pl

from releases.errors import InvalidReleaseSpecError
from releases.versions import validate_dataset_name, validate_version
from schemas.table import Table

# A config becomes a folder name and a `datasets` config name; a split becomes a file-name prefix
# and a `datasets` split name (which may not contain '-').
CONFIG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ATTACHMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.[A-Za-z0-9]+$")
RESERVED_NAMES = frozenset({"README.md", "manifest.json", "checksums.sha256"})
SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")
DEFAULT_SPLIT = "train"
DEFAULT_SPLIT_ORDER: tuple[str, ...] = ("train", "validation", "test")
DEFAULT_MAX_ROWS_PER_FILE = 500_000
DEFAULT_ROW_GROUP_SIZE = 20_000  # tables of text and numbers
DEFAULT_ROW_GROUP_SIZE_BINARY = 100  # tables with embedded media (Image, Audio, ...)
# Keys of manifest.json written by the release layer itself; manifest_extra may not override them.
RESERVED_MANIFEST_KEYS = frozenset({"format", "dataset", "version", "created_at", "configs", "files", "writer"})


@dataclass(frozen=True)
class CardText:
    """The prose of a dataset card. Counts, features and loading instructions are generated.

    ``metadata`` adds YAML front-matter keys (e.g. ``language``, ``tags``, ``task_categories``,
    ``size_categories``, ``license_name``, ``license_link``); it may not override the generated
    ``configs``, ``dataset_info``, ``license`` and ``pretty_name``.
    """

    title: str
    summary: str
    body_markdown: str = ""
    license: str = "other"
    license_note: str = ""
    citation: str | None = None
    pretty_name: str | None = None  # defaults to title
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseSpec:
    """One release: ``configs`` maps each config name to its schema, ``tables`` to its rows.

    * ``tables[name]`` must have (at least) the released columns of ``configs[name]``; other
      columns are dropped, declared types are enforced (``Table.conform``).
    * ``split_column``: rows are grouped into splits by this column, which stays in the data;
      ``None`` puts every row in one split ``"train"``. A mapping gives it per config.
    * Splits are ordered by ``split_order`` first, then alphabetically.
    * ``max_rows_per_file``: a split is sharded into ``<split>-0000i-of-0000N.parquet`` files.
    * ``row_group_size``: rows per parquet row group; ``None`` picks 20,000 (100 for tables with
      embedded media such as Image). Part of the byte-identity contract: same value, same bytes.
    """

    dataset: str
    version: str
    configs: Mapping[str, Table]
    tables: Mapping[str, pl.DataFrame]
    card: CardText
    split_column: str | None | Mapping[str, str | None] = "split"
    manifest_extra: Mapping[str, Any] = field(default_factory=dict)
    max_rows_per_file: int = DEFAULT_MAX_ROWS_PER_FILE
    row_group_size: int | None = None
    split_order: Sequence[str] = DEFAULT_SPLIT_ORDER
    # Extra files shipped beside the card (e.g. a plot the card shows): name -> bytes; checksummed
    # and listed in the manifest like every other file.
    attachments: Mapping[str, bytes] = field(default_factory=dict)

    def split_column_of(self, config: str) -> str | None:
        if isinstance(self.split_column, Mapping):
            return self.split_column.get(config)
        return self.split_column

    def validate(self) -> None:
        """Cheap structural checks (names, presence of columns); data checks happen while writing."""
        validate_dataset_name(self.dataset)
        validate_version(self.version)
        if not self.configs:
            raise InvalidReleaseSpecError("a release needs at least one config")
        for name, table in self.configs.items():
            if not isinstance(name, str) or not CONFIG_RE.match(name) or ".." in name:
                raise InvalidReleaseSpecError(
                    f"invalid config name {name!r}: letters, digits, '_', '.', '-' (pattern {CONFIG_RE.pattern})"
                )
            if not isinstance(table, Table):
                raise InvalidReleaseSpecError(f"configs[{name!r}] must be a schemas.table.Table, not {type(table)}")
            if table.primary_key not in [c.name for c in table.released_columns]:
                raise InvalidReleaseSpecError(f"config {name!r}: primary key {table.primary_key!r} is not released")
            sc = self.split_column_of(name)
            if sc is not None and sc not in [c.name for c in table.released_columns]:
                raise InvalidReleaseSpecError(
                    f"config {name!r}: split column {sc!r} is not a released column of table {table.name!r}"
                )
        extra_tables = sorted(set(self.tables) - set(self.configs))
        missing_tables = sorted(set(self.configs) - set(self.tables))
        if missing_tables or extra_tables:
            raise InvalidReleaseSpecError(
                f"tables and configs must have the same keys: missing tables {missing_tables}, "
                f"tables without a config {extra_tables}"
            )
        for name, df in self.tables.items():
            if not isinstance(df, pl.DataFrame):
                raise InvalidReleaseSpecError(f"tables[{name!r}] must be a polars DataFrame, not {type(df)}")
            released = [c.name for c in self.configs[name].released_columns]
            missing = [c for c in released if c not in df.columns]
            if missing:
                raise InvalidReleaseSpecError(
                    f"config {name!r}: the frame lacks released columns {missing}; it has {df.columns}"
                )
        for name, data in self.attachments.items():
            if not isinstance(name, str) or not ATTACHMENT_RE.match(name) or name in RESERVED_NAMES or name in self.configs:
                raise InvalidReleaseSpecError(
                    f"invalid attachment name {name!r}: a plain file name (pattern {ATTACHMENT_RE.pattern}), not "
                    f"{', '.join(sorted(RESERVED_NAMES))} nor a config name"
                )
            if not isinstance(data, bytes):
                raise InvalidReleaseSpecError(f"attachments[{name!r}] must be bytes, not {type(data)}")
        if self.max_rows_per_file < 1:
            raise InvalidReleaseSpecError("max_rows_per_file must be >= 1")
        if self.row_group_size is not None and self.row_group_size < 1:
            raise InvalidReleaseSpecError("row_group_size must be >= 1 (or None)")
        clash = sorted(RESERVED_MANIFEST_KEYS & set(self.manifest_extra))
        if clash:
            raise InvalidReleaseSpecError(f"manifest_extra may not set {clash}: the writer owns these keys")
        clash = sorted({"configs", "dataset_info", "license", "pretty_name"} & set(self.card.metadata))
        if clash:
            raise InvalidReleaseSpecError(f"card.metadata may not set {clash}: they are generated")
