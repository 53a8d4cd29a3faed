"""Corpus documents: one shard at a time, streamed in batches, bad documents quarantined.

Formats (``CorpusSettings.format``; ``auto`` goes by the file name, compression always by the
first bytes, see :func:`pipelines.core.readers.detect_compression`):

* **JSON lines** (Dolma style; ``.jsonl``, ``.json``, ``.ndjson``, plain or ``.gz`` / ``.zst``):
  one object per line with the text in ``text_field`` (default ``text``), the id in ``id_field``
  (default ``id``; a number is taken as its decimal string), other fields ignored.
* **parquet** (``.parquet``): the text column ``text_field``, the id column ``id_field`` if the
  file has it (string or integer); read in record batches of ``batch_docs`` rows.
* **plain text** (``.txt``, plain or ``.gz`` / ``.zst``): one document per line; blank lines are
  not documents (counted in ``blank_lines``).

``DocBatch.lines`` is the 1-based line of each document in its (decompressed) shard, or its
1-based row for parquet. A document without an id gets ``<shard file name>:<line>`` (counted in
``ids_generated``).

Training order, optional, one of two sources (both at once is an :class:`InputError`):

* ``step_field``: a field path in each document, ``step`` or ``metadata.step`` (a column, or a
  struct column's field, in parquet); the value must be a non-negative integer;
* a data-order file (``order_file``; CSV or JSONL with ``shard, first_line, last_line, step``):
  the lines ``first_line..last_line`` (inclusive) of the shard with that file name were trained
  at ``step`` (:class:`DataOrder`).

A document whose step is missing (no value, or a line no order range covers) is kept with step
``None``: it counts for the whole corpus, not for any checkpoint. Without a source ``steps`` is
``None``.

Bad input:

* per document, to ``rejects`` with the shard and line, the document dropped: ``malformed_json``
  (not JSON, or not UTF-8), ``not_an_object`` (JSON but not an object), ``no_text`` (no text
  field, null, not a string, empty or whitespace only), ``bad_step`` (a step value that is not a
  non-negative 64-bit integer: a string, a float, a boolean, a negative number), ``bad_encoding``
  (a plain-text line that is not UTF-8);
* a **broken compressed shard** (gzip or zstd, truncated or corrupt anywhere, a bad checksum
  included) is quarantined *whole*: one ``broken_compression`` reject naming the file and where
  it broke, no documents, ``DocBatch.skipped`` set. The stream is checked to its end before the
  first document is handed out (so a compressed shard is decompressed twice), which makes the
  counts independent of where a file broke. A shard expanding more than ``max_expansion`` times
  (a decompression bomb) is quarantined whole the same way (``decompression_bomb``). A parquet file whose footer cannot be read
  (truncated, not parquet) is quarantined the same way as ``broken_parquet``; damage inside a
  readable parquet file found after documents were handed out is an :class:`InputError`, which
  fails the shard's task, so no partial counts are kept either;
* whole-file problems that no quarantine can fix are an :class:`InputError` naming the file and
  the fix: no such shard, a name that tells no format, an unsupported compression (bz2, xz, ...),
  a parquet file without the text column, with a text, id or step column of the wrong type, a
  step field on plain text, a bad data-order file (a bad row, overlapping ranges).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core.errors import InputError, TruncatedInputError
from pipelines.core.readers import DecompressionBombError, LineChunk, TruncatedTail, detect_compression, iter_line_chunks
from pipelines.core.text import repair_surrogates
from pipelines.core.rejects import rejects_frame

_COMPRESSED = ("", ".gz", ".zst", ".zstd")
_LINE_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".txt": "text"}
CORPUS_SUFFIXES: tuple[str, ...] = (".parquet", *(base + comp for base in _LINE_FORMATS for comp in _COMPRESSED))
CHUNK_BYTES = 8 * 1024 * 1024  # decompressed bytes parsed at a time
_MAX_STEP = 2**63 - 1
_INT = re.compile(r"[+-]?\d+")


class CorpusSettings(BaseModel):
    """How corpus shards are read (``facts.corpus`` in ``corpusforge.toml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["auto", "jsonl", "parquet", "text"] = Field(
        "auto", description="Shard format; auto: by the file name (.jsonl/.json(.gz/.zst), .parquet, .txt(.gz/.zst))."
    )
    text_field: str = Field("text", description="Field (JSON) or column (parquet) holding the document text.")
    id_field: str = Field("id", description="Field or column holding the document id; missing: <shard>:<line>.")
    step_field: str | None = Field(
        None, description="Field path of the training step in each document, e.g. step or metadata.step; None: no step field."
    )
    order_file: Path | None = Field(
        None, description="Data-order file (CSV/JSONL: shard, first_line, last_line, step); the other way to give training order."
    )
    batch_docs: int = Field(10_000, ge=1, description="Documents per batch.")
    max_expansion: int = Field(
        500, ge=0, description="A compressed shard expanding more than this many times is quarantined as a decompression bomb; 0 = no limit."
    )


@dataclass
class DocBatch:
    """Documents of one shard. ``steps`` is None when the corpus gives no training order, else one
    step (or None) per document. ``rejects`` (REJECTS layout) holds what was dropped since the
    previous batch; a batch may carry rejects and no documents. ``bytes_read``: bytes of the shard
    file (compressed) consumed since the previous batch; they add up to the file size.
    ``skipped``: the whole shard was quarantined (broken compression or parquet)."""

    shard: str
    ids: list[str]
    texts: list[str]
    lines: list[int]
    steps: list[int | None] | None
    rejects: pl.DataFrame
    bytes_read: int
    counters: dict[str, int] = field(default_factory=dict)
    skipped: bool = False


def shard_format(path: Path, declared: str = "auto") -> str:
    """``jsonl``, ``parquet`` or ``text``: ``declared`` unless it is ``auto``, else by the name."""
    if declared != "auto":
        return declared
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    for comp in _COMPRESSED[1:]:
        name = name.removesuffix(comp)
    for suffix, fmt in _LINE_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise InputError(
        path, "the file name tells no corpus format",
        f"Name shards with one of {', '.join(CORPUS_SUFFIXES)}, or set facts.corpus.format (jsonl, parquet, text)",
    )


def iter_batches(
    path: Path | str, settings: CorpusSettings | None = None, *, batch_docs: int | None = None, order: DataOrder | None = None
) -> Iterator[DocBatch]:
    """The documents of the shard ``path`` in batches of ``batch_docs`` (default
    ``settings.batch_docs``), in shard order. ``order`` (else ``settings.order_file``) gives
    the training order by line ranges. See the module docstring for formats and failures."""
    settings = settings or CorpusSettings()
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such corpus shard", "Give corpus shard files")
    if order is None and settings.order_file is not None:
        order = read_data_order(settings.order_file)
    if order is not None and settings.step_field:
        raise InputError(
            order.source, f"both a step field ({settings.step_field}) and a data-order file give the training order",
            "Set only one of facts.corpus.step_field and the order file",
        )
    fmt = shard_format(path, settings.format)
    if fmt == "text" and settings.step_field:
        raise InputError(path, "a plain-text shard has no step field", "Give the training order of text shards in a data-order file")
    n = batch_docs or settings.batch_docs
    parts = _parquet_parts(path, settings, n) if fmt == "parquet" else _line_parts(path, settings, fmt)
    yield from _rebatch(parts, path, n, order, settings.step_field is not None)


# --------------------------------------------------------------------------- batching


@dataclass
class _Part:
    """Documents and rejects of one piece of a shard, before batching."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    steps: list[int | None] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    bytes_read: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    skipped: bool = False

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def reject(self, reason: str, detail: str, src: str, line: int | None, raw: Any = None, record_id: str | None = None) -> None:
        self.rejects.append(
            {"record_id": record_id, "drop_reason": reason, "detail": detail, "source_file": src, "line": line, "raw": raw}
        )

    def add(self, doc_id: str, text: str, line: int, step: int | None) -> None:
        self.ids.append(doc_id)
        self.texts.append(text)
        self.lines.append(line)
        self.steps.append(step)


def _rebatch(parts: Iterator[_Part], path: Path, n: int, order: DataOrder | None, has_step_field: bool) -> Iterator[DocBatch]:
    """Cut the parts into batches of ``n`` documents; a full batch waits until more arrives, so
    the last batch carries the shard's remaining bytes and rejects."""
    pending = _Part()
    with_steps = has_step_field or order is not None

    def take(k: int) -> DocBatch:
        nonlocal pending
        batch = DocBatch(
            shard=str(path), ids=pending.ids[:k], texts=pending.texts[:k], lines=pending.lines[:k],
            steps=pending.steps[:k] if with_steps else None, rejects=rejects_frame(pending.rejects),
            bytes_read=pending.bytes_read, counters=pending.counters, skipped=pending.skipped,
        )
        pending = _Part(pending.ids[k:], pending.texts[k:], pending.lines[k:], pending.steps[k:])
        return batch

    for part in parts:
        if order is not None:
            part.steps = order.steps_for(path.name, part.lines)
        pending.ids += part.ids
        pending.texts += part.texts
        pending.lines += part.lines
        pending.steps += part.steps
        pending.rejects += part.rejects
        pending.bytes_read += part.bytes_read
        for key, value in part.counters.items():
            pending.count(key, value)
        pending.skipped |= part.skipped
        while len(pending.ids) > n:
            yield take(n)
    if pending.ids or pending.rejects or pending.bytes_read or pending.counters or pending.skipped:
        yield take(len(pending.ids))


# --------------------------------------------------------------------------- line formats


def _line_parts(path: Path, settings: CorpusSettings, fmt: str) -> Iterator[_Part]:
    src = str(path)
    if detect_compression(path) != "none":
        broken = _compression_break(path, settings.max_expansion)
        if broken is not None:
            yield broken
            return
    consumed = 0

    def count(n: int) -> None:  # called by the decompression thread
        nonlocal consumed
        consumed += n

    reported = 0
    fields = _JsonFields.of(settings) if fmt == "jsonl" else None
    for chunk in iter_line_chunks(path, CHUNK_BYTES, on_compressed=count, max_expansion=settings.max_expansion):
        if isinstance(chunk, TruncatedTail):  # the file changed after it was checked
            raise TruncatedInputError(path, chunk.line - 1)
        part = _parse_json_chunk(chunk, fields, path.name, src) if fields else _parse_text_chunk(chunk, path.name, src)
        part.bytes_read, reported = consumed - reported, consumed
        yield part
    yield _Part(bytes_read=consumed - reported)


def _compression_break(path: Path, max_expansion: int | None = None) -> _Part | None:
    """None if the compressed stream of ``path`` is whole; else the quarantine of the shard."""
    size = path.stat().st_size
    read = 0

    def count(n: int) -> None:
        nonlocal read
        read += n

    def broken(detail: str, line: int | None) -> _Part:
        part = _Part(bytes_read=size, skipped=True, counters={"shards_skipped": 1})
        part.reject("broken_compression", f"{detail}; the whole shard is skipped. Re-download or re-copy it", str(path), line)
        return part

    try:
        for chunk in iter_line_chunks(path, 1024 * 1024, on_compressed=count, max_expansion=max_expansion):
            if isinstance(chunk, TruncatedTail):
                return broken(
                    f"truncated: the compressed stream ends inside line {chunk.line:,} "
                    f"({chunk.line - 1:,} complete lines, {size:,} compressed bytes)", chunk.line,
                )
    except DecompressionBombError as exc:
        part = _Part(bytes_read=size, skipped=True, counters={"shards_skipped": 1})
        part.reject("decompression_bomb", f"{exc.problem}; the whole shard is skipped. {exc.fix}", str(path), None)
        return part
    except InputError as exc:  # corrupt data or a bad checksum, raised by the decompressor
        return broken(f"{exc.problem}, within the first {read:,} of {size:,} compressed bytes", None)
    return None


@dataclass(frozen=True)
class _JsonFields:
    text: str
    id: str
    step: tuple[str, ...] | None
    schema: pa.Schema

    @classmethod
    def of(cls, settings: CorpusSettings) -> "_JsonFields":
        step = tuple(settings.step_field.split(".")) if settings.step_field else None
        fields = {settings.text_field: pa.string(), settings.id_field: pa.string()}
        if step:
            if step[0] in fields:
                raise InputError("facts.corpus.step_field", f"{settings.step_field!r} lies inside the text or id field", "Give the step's own field path")
            kind: pa.DataType = pa.int64()
            for name in reversed(step[1:]):
                kind = pa.struct([(name, kind)])
            fields[step[0]] = kind
        return cls(settings.text_field, settings.id_field, step, pa.schema(list(fields.items())))


_ABSENT = object()


def _dig(value: Any, path: Sequence[str]) -> Any:
    for name in path:
        if not isinstance(value, dict):
            return _ABSENT
        value = value.get(name, _ABSENT)
    return value


def _parse_json_chunk(chunk: LineChunk, fields: _JsonFields, shard: str, src: str) -> _Part:
    """Arrow's reader (typed, fast) for a clean chunk; line by line for a chunk with a bad line,
    a blank line, a lone surrogate or a value of another type (a number id, a string step)."""
    data = chunk.data
    if b"\n\n" not in data and not data.startswith(b"\n"):
        try:
            table = pajson.read_json(
                io.BytesIO(data),
                read_options=pajson.ReadOptions(block_size=max(1 << 20, min(len(data) + 1, 16 << 20)), use_threads=False),
                parse_options=pajson.ParseOptions(explicit_schema=fields.schema, unexpected_field_behavior="ignore"),
            )
            # Arrow's JSON reader lets invalid UTF-8 (a lone surrogate's escape included) through;
            # turning the strings into Python's checks them (and costs less than Arrow's check).
            texts = table.column(fields.text).to_pylist()
            ids = table.column(fields.id).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
            table = None
        if table is not None and table.num_rows == chunk.n_lines:
            whole = _whole_part(table, texts, ids, chunk, fields)
            if whole is not None:
                return whole
            steps = table.column(fields.step[0]).to_pylist() if fields.step else [None] * table.num_rows
            return _documents(zip(texts, ids, steps), chunk, fields, shard, src, from_arrow=True)
    objects = []
    part = _Part()
    for offset, raw in enumerate(data.split(b"\n")[: chunk.n_lines]):
        line = chunk.first_line + offset
        if not raw.strip():
            part.count("blank_lines")
            objects.append(None)
            continue
        try:
            obj = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            part.reject("malformed_json", f"not valid JSON: {exc}", src, line, raw.decode("utf-8", errors="replace"))
            obj = None
        else:
            if not isinstance(obj, dict):
                part.reject("not_an_object", f"expected a JSON object, got {type(obj).__name__}", src, line, raw.decode())
                obj = None
        objects.append(obj)
    records = (
        (None, None, None) if obj is None else (obj.get(fields.text, _ABSENT), obj.get(fields.id), obj.get(fields.step[0], _ABSENT) if fields.step else None)
        for obj in objects
    )
    part = _documents(records, chunk, fields, shard, src, from_arrow=False, part=part, skip=[o is None for o in objects])
    part.rejects.sort(key=lambda r: r["line"])  # parse errors were noted first
    return part


def _whole_part(table: pa.Table, texts: list, ids: list, chunk: LineChunk, fields: _JsonFields) -> _Part | None:
    """The chunk's documents when every line passes the document rules as it is, the usual case
    (a text that is not blank, an id, a step that is absent or not negative), taken whole;
    otherwise None, and the rules go line by line (:func:`_documents`)."""
    if None in ids or "" in ids or not all(t and not t.isspace() for t in texts):
        return None
    n = table.num_rows
    if fields.step:
        values = table.column(fields.step[0]).combine_chunks()
        for name in fields.step[1:]:
            values = pc.struct_field(values, [name])  # a null parent gives a null step, as _dig does
        if values.null_count < n and pc.min(values).as_py() < 0:
            return None
        steps = values.to_pylist()
    else:
        steps = [None] * n
    return _Part(ids=ids, texts=texts, lines=list(range(chunk.first_line, chunk.first_line + n)), steps=steps)


def _documents(
    records, chunk: LineChunk, fields: _JsonFields, shard: str, src: str, *, from_arrow: bool,
    part: _Part | None = None, skip: list[bool] | None = None,
) -> _Part:
    """Apply the document rules to (text, id, step root) records, one per line of ``chunk``."""
    part = part or _Part()
    lines_raw: list[bytes] | None = None

    def raw(offset: int) -> str:
        nonlocal lines_raw
        if lines_raw is None:
            lines_raw = chunk.data.split(b"\n")
        return lines_raw[offset].decode("utf-8", errors="replace")

    for offset, (text, doc_id, step_root) in enumerate(records):
        if skip and skip[offset]:
            continue
        line = chunk.first_line + offset
        if not isinstance(text, str) or not text.strip():
            what = "missing" if text is _ABSENT or text is None else "empty" if isinstance(text, str) else f"a {type(text).__name__}"
            part.reject("no_text", f"field '{fields.text}' is {what}", src, line, raw(offset), _known_id(doc_id))
            continue
        step = None
        if fields.step and step_root is not _ABSENT:
            step = _dig(step_root, fields.step[1:])
            if step is _ABSENT:
                step = None
            elif step is not None and not _is_step(step):
                detail = f"'{'.'.join(fields.step)}' is {json.dumps(step)[:40]}, not a non-negative integer"
                part.reject("bad_step", detail, src, line, raw(offset), _known_id(doc_id))
                continue
        part.add(_doc_id(doc_id, shard, line, part), text if from_arrow else repair_surrogates(text), line, step)
    return part


def _is_step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_STEP


def _known_id(value: Any) -> str | None:
    """The document's own id for a reject, if it has one."""
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "" else None


def _doc_id(value: Any, shard: str, line: int, part: _Part) -> str:
    if isinstance(value, str) and value:
        return repair_surrogates(value)
    if isinstance(value, int) and not isinstance(value, bool):
        part.count("ids_from_numbers")
        return str(value)
    part.count("ids_generated")
    return f"{shard}:{line}"


def _parse_text_chunk(chunk: LineChunk, shard: str, src: str) -> _Part:
    part = _Part()
    for offset, raw in enumerate(chunk.data.split(b"\n")[: chunk.n_lines]):
        line = chunk.first_line + offset
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            part.count("blank_lines")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            part.reject("bad_encoding", f"not UTF-8 text ({exc.reason} at byte {exc.start})", src, line, raw.decode("utf-8", errors="replace"))
            continue
        part.add(f"{shard}:{line}", text, line, None)
    return part


# --------------------------------------------------------------------------- parquet


def _parquet_parts(path: Path, settings: CorpusSettings, batch_rows: int) -> Iterator[_Part]:
    src, size = str(path), path.stat().st_size
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        part = _Part(bytes_read=size, skipped=True, counters={"shards_skipped": 1})
        part.reject("broken_parquet", f"not a readable parquet file ({exc}); the whole shard is skipped. Re-write or re-copy it", src, None)
        yield part
        return
    try:
        yield from _parquet_documents(file, path, settings, batch_rows)
    finally:
        file.close()


def _parquet_documents(file: pq.ParquetFile, path: Path, settings: CorpusSettings, batch_rows: int) -> Iterator[_Part]:
    src, size = str(path), path.stat().st_size
    schema = file.schema_arrow
    step_path = tuple(settings.step_field.split(".")) if settings.step_field else None
    _check_parquet_columns(path, schema, settings, step_path)
    has_id = settings.id_field in schema.names
    columns = [settings.text_field] + ([settings.id_field] if has_id else []) + ([step_path[0]] if step_path else [])
    total = max(file.metadata.num_rows, 1)
    row = reported = 0
    batches = file.iter_batches(batch_size=batch_rows, columns=list(dict.fromkeys(columns)))
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(path, f"unreadable parquet data after row {row:,} ({exc})", "Re-write or re-copy the file") from exc
        if batch is None:
            break
        part = _Part()
        texts = batch.column(settings.text_field).to_pylist()
        ids = batch.column(settings.id_field).to_pylist() if has_id else [None] * batch.num_rows
        roots = batch.column(step_path[0]).to_pylist() if step_path else [None] * batch.num_rows
        for offset, (text, doc_id, root) in enumerate(zip(texts, ids, roots)):
            line = row + offset + 1
            if text is None or not text.strip():
                what = "null" if text is None else "empty"
                part.reject("no_text", f"column '{settings.text_field}' is {what}", src, line, None, _known_id(doc_id))
                continue
            step = _dig(root, step_path[1:]) if step_path else None
            if step is not None and step is not _ABSENT and step < 0:
                part.reject("bad_step", f"'{settings.step_field}' is {step}, not a non-negative integer", src, line, None, _known_id(doc_id))
                continue
            part.add(_doc_id(doc_id, path.name, line, part), text, line, None if step is _ABSENT else step)
        row += batch.num_rows
        part.bytes_read = size * row // total - reported
        reported += part.bytes_read
        yield part
    yield _Part(bytes_read=size - reported)


def _check_parquet_columns(path: Path, schema: pa.Schema, settings: CorpusSettings, step: tuple[str, ...] | None) -> None:
    def kind(name: str) -> pa.DataType | None:
        return schema.field(name).type if name in schema.names else None

    text = kind(settings.text_field)
    if text is None or not (pa.types.is_string(text) or pa.types.is_large_string(text) or pa.types.is_string_view(text)):
        what = "no" if text is None else f"a {text} (not string)"
        raise InputError(path, f"{what} text column '{settings.text_field}' (columns: {schema.names})", "Set facts.corpus.text_field to the text column")
    id_type = kind(settings.id_field)
    if id_type is not None and not (pa.types.is_string(id_type) or pa.types.is_large_string(id_type) or pa.types.is_string_view(id_type) or pa.types.is_integer(id_type)):
        raise InputError(path, f"the id column '{settings.id_field}' is {id_type}, not string or integer", "Set facts.corpus.id_field to a string or integer column")
    if step:
        leaf = kind(step[0])
        for name in step[1:]:
            leaf = leaf.field(name).type if leaf is not None and pa.types.is_struct(leaf) and leaf.get_field_index(name) >= 0 else None
        if leaf is None or not pa.types.is_integer(leaf):
            what = "no" if leaf is None else f"a {leaf} (not integer)"
            raise InputError(path, f"{what} step column '{settings.step_field}'", "Set facts.corpus.step_field to an integer column (a.b for a struct field)")


# --------------------------------------------------------------------------- data order


@dataclass(frozen=True)
class DataOrder:
    """Training steps of shard line ranges: per shard file name, sorted ``first`` lines, their
    ``last`` lines (inclusive) and ``step`` s (numpy arrays); ranges of a shard never overlap."""

    source: str
    ranges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]

    def step_for(self, shard: str, line: int) -> int | None:
        """The step of line ``line`` of the shard named ``shard`` (a file name or a path), or None."""
        return self.steps_for(shard, [line])[0]

    def steps_for(self, shard: str, lines: Sequence[int]) -> list[int | None]:
        found = self.ranges.get(Path(shard).name)
        if found is None or not len(lines):
            return [None] * len(lines)
        first, last, step = found
        at = np.asarray(lines, dtype=np.int64)
        k = np.searchsorted(first, at, side="right") - 1
        ok = (k >= 0) & (at <= last[np.maximum(k, 0)])
        picked = step[np.maximum(k, 0)]
        return [int(s) if hit else None for s, hit in zip(picked, ok)]


def read_data_order(path: Path | str) -> DataOrder:
    """Read a data-order file (``.csv``, or JSON lines ``.jsonl``/``.json``); every row must be
    valid and ranges of a shard must not overlap, else an :class:`InputError` naming the line.
    Read once per file version (cached by path, size and modification time)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such data-order file", "Give a CSV or JSONL of shard, first_line, last_line, step rows")
    stat = path.stat()
    return _read_data_order(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _read_data_order(path_str: str, size: int, mtime_ns: int) -> DataOrder:
    path = Path(path_str)
    rows: dict[str, list[tuple[int, int, int, int]]] = {}
    for line, record in _order_records(path):
        values = []
        for name in ("first_line", "last_line", "step"):
            value = record.get(name)
            if isinstance(value, str) and _INT.fullmatch(value.strip()):
                value = int(value)
            if not _is_step(value):
                raise InputError(path, f"{name} is {value!r}, not a non-negative integer", "Fix the row", line=line)
            values.append(value)
        first, last, step = values
        shard = record.get("shard")
        if not isinstance(shard, str) or not shard.strip():
            raise InputError(path, "no shard name", "Give the shard's file name in column shard", line=line)
        if first < 1 or last < first:
            raise InputError(path, f"bad line range {first}..{last} (lines are 1-based, first <= last)", "Fix the row", line=line)
        rows.setdefault(Path(shard.strip()).name, []).append((first, last, step, line))
    ranges = {}
    for shard, spans in rows.items():
        spans.sort()
        for before, after in zip(spans, spans[1:]):
            if after[0] <= before[1]:
                raise InputError(
                    path, f"shard {shard}: lines {after[0]}..{after[1]} overlap lines {before[0]}..{before[1]} (line {before[3]})",
                    "Give each line of a shard one step", line=after[3],
                )
        first, last, step, _ = (np.asarray(col, dtype=np.int64) for col in zip(*spans))
        ranges[shard] = (first, last, step)
    return DataOrder(str(path), ranges)


def _order_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    name = path.name.lower()
    if name.endswith(".csv"):
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("shard", "first_line", "last_line", "step") if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(path, f"the header lacks {', '.join(missing)}", "Give a header row: shard,first_line,last_line,step")
            for record in reader:
                yield reader.line_num, record
    elif name.endswith((".jsonl", ".json")):
        with open(path, encoding="utf-8-sig") as f:
            for line, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(path, f"not valid JSON ({exc.msg})", "Fix the line", line=line) from exc
                if not isinstance(record, dict):
                    raise InputError(path, "not a JSON object", "Give one {shard, first_line, last_line, step} object per line", line=line)
                yield line, record
    else:
        raise InputError(path, "unknown data-order file type", "Give a .csv or .jsonl file")
