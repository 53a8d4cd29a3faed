"""Streaming readers: compressed files, line chunks, and newline-delimited JSON with quarantine.

Files are recognised by their first bytes, not their names. Data streams through in chunks of
complete lines, so memory stays bounded whatever the file size. Parsing takes the fastest path
that applies to a chunk: the compiled scanner of :mod:`pipelines.core.jsonscan` (flat schemas of
strings and integers, ordinary lines), then Arrow's JSON reader (strict types), and falls back
to line-by-line parsing only for a chunk that has a bad line, so one bad line costs a slow
chunk, not a failed run. Each path gives what the next one would.
"""

from __future__ import annotations

import queue
import threading
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson
import zstandard

from pipelines.core.errors import InputError
from pipelines.core.text import repair_surrogates

RAW_LIMIT = 10_000  # characters of a bad record kept in the rejects file

_MAGIC = (
    (b"\x28\xb5\x2f\xfd", "zst"),
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"\x04\x22\x4d\x18", "lz4"),
)
SUPPORTED_COMPRESSION = ("zst", "gz", "none")
_DECOMPRESS_COMMAND = {"bz2": "bzip2 -dc", "zip": "unzip -p"}
_TEXT_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
# A decompression bomb (a few KB that expand to GBs) is refused once this much came out of a
# file at more than MAX_EXPANSION times its compressed size. Real dumps expand 5-30x (zstd
# --long up to ~40x); zeros expand ~1,000x (gzip) to ~30,000x (zstd).
MAX_EXPANSION = 500
EXPANSION_CHECK_AFTER = 64 * 1024 * 1024  # decompressed bytes before the ratio is judged


def detect_compression(path: Path) -> str:
    """``zst``, ``gz`` or ``none``; anything else is an :class:`InputError` saying what to do."""
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            if name not in SUPPORTED_COMPRESSION:
                raise InputError(
                    path,
                    f"unsupported compression '{name}'",
                    "Supported: zstd (.zst), gzip (.gz) or plain text; recompress it, e.g. "
                    f"`{_DECOMPRESS_COMMAND.get(name, name + ' -dc')} FILE | zstd -o FILE.zst`",
                )
            return name
    for bom, encoding in _TEXT_BOMS:
        if head.startswith(bom):
            raise InputError(
                path,
                f"{encoding} text (its first bytes are a {encoding} byte-order mark), not UTF-8",
                f"Re-encode it as UTF-8, e.g. `iconv -f {encoding} -t UTF-8 FILE > FILE.utf8`",
            )
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head and not stripped[:1] in (b"{", b"[", b'"', b"") and _looks_binary(head):
        raise InputError(
            path,
            f"unknown format (first bytes {head[:4].hex()}: neither zstd, gzip nor text)",
            "Give newline-delimited JSON, plain or compressed with zstd or gzip",
        )
    return "none"


def _looks_binary(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return any(b < 9 for b in head)


# --------------------------------------------------------------------------- decompression


def iter_blocks(
    path: Path, block_size: int = 1024 * 1024, on_compressed: Callable[[int], None] | None = None, max_expansion: int | None = None
) -> Iterator[bytes]:
    """Yield decompressed bytes of ``path``. Raises :class:`TruncatedInputError` at a cut stream.

    ``on_compressed(n)`` is called with the compressed bytes consumed (for progress bars). A
    compressed file that expands more than ``max_expansion`` times (default
    :data:`MAX_EXPANSION`; 0: no limit) is an :class:`InputError` (a decompression bomb), raised
    after EXPANSION_CHECK_AFTER bytes; output per step stays bounded, so memory does too.
    """
    kind = detect_compression(path)
    limit = MAX_EXPANSION if max_expansion is None else max_expansion
    with open(path, "rb") as raw:
        if kind == "zst":
            yield from _iter_zstd(raw, path, block_size, on_compressed, limit)
        elif kind == "gz":
            yield from _iter_gzip(raw, path, block_size, on_compressed, limit)
        else:
            while chunk := raw.read(block_size):
                if on_compressed:
                    on_compressed(len(chunk))
                yield chunk


def _iter_zstd(raw, path: Path, block_size: int, on_compressed, limit: int) -> Iterator[bytes]:
    # python-zstandard's stream reader returns EOF silently on a cut stream; a decompression
    # object tells us whether the frame was complete. Long-window dumps (zstd --long=31) need
    # the larger window.
    dctx = zstandard.ZstdDecompressor(max_window_size=2**31)
    yield from _iter_frames(raw, path, block_size, on_compressed, lambda: dctx.decompressobj(write_size=block_size), zstandard.ZstdError, "zstd", limit)


def _iter_gzip(raw, path: Path, block_size: int, on_compressed, limit: int) -> Iterator[bytes]:
    yield from _iter_frames(raw, path, block_size, on_compressed, lambda: zlib.decompressobj(wbits=31), zlib.error, "gzip", limit)


def _iter_frames(
    raw, path: Path, block_size: int, on_compressed, new_decoder, error: type[Exception], name: str, limit: int = 0
) -> Iterator[bytes]:
    """Decompress a sequence of frames (zstd) or members (gzip); a cut last frame raises _Truncated.

    Compressed bytes are fed in pieces that start small and grow while the output stays small:
    one call's output is bounded (a zstd block of zeros is ~32,000:1), so a bomb cannot blow up
    memory before the expansion limit stops it.
    """
    decoder = new_decoder()
    in_frame = False
    piece = 4096
    read = produced = 0
    while chunk := raw.read(block_size):
        if on_compressed:
            on_compressed(len(chunk))
        read += len(chunk)
        view = memoryview(chunk)
        while view:
            feed, view = view[:piece], view[piece:]
            while feed:
                try:
                    out = decoder.decompress(feed)
                except error as exc:
                    raise InputError(path, f"corrupt {name} data ({exc})", "Re-download or re-copy the file") from exc
                in_frame = True
                if out:
                    produced += len(out)
                    if limit and produced > EXPANSION_CHECK_AFTER and produced > limit * read:
                        raise DecompressionBombError(
                            path,
                            f"a decompression bomb? {read:,} compressed bytes expanded to more than {produced:,} "
                            f"({produced // read:,}x; the limit is {limit:,}x)",
                            "If the file is genuine, raise the limit: sad.sources.max_expansion or facts.corpus.max_expansion (0: none)",
                        )
                    yield out
                    if len(out) > 4 * block_size:
                        piece = max(256, piece // 4)
                    elif len(out) < block_size:
                        piece = min(block_size, piece * 2)
                if decoder.eof:
                    feed = decoder.unused_data
                    decoder = new_decoder()
                    in_frame = False
                else:
                    feed = b""
    if in_frame:
        raise _Truncated()


class DecompressionBombError(InputError):
    """A compressed file expands far beyond any real dump (more than ``max_expansion`` times)."""

    def __reduce__(self):
        return (DecompressionBombError, (self.path, self.problem, self.fix, self.line))


class _Truncated(Exception):
    """Internal signal; turned into TruncatedInputError with the line count by iter_line_chunks."""


def estimate_decompressed_size(path: Path, sample_bytes: int = 4 * 1024 * 1024) -> int:
    """The file's size once decompressed, from the compression ratio of its first bytes.

    Ratios vary a lot between dumps (7x to 20x for zstd), so partition sizing samples the file
    rather than assuming one.
    """
    size = path.stat().st_size
    if detect_compression(path) == "none" or size == 0:
        return size
    read = out = 0

    def count(n: int) -> None:
        nonlocal read
        read += n

    try:
        # no expansion limit here: the sample is capped below, and the read that follows applies
        # the pipeline's own limit
        for block in iter_blocks(path, block_size=256 * 1024, on_compressed=count, max_expansion=0):
            out += len(block)
            if read >= sample_bytes or out >= 64 * sample_bytes:
                break
    except _Truncated:
        pass
    return int(size * out / max(read, 1))


# --------------------------------------------------------------------------- line chunks


class LineChunk:
    """Complete lines of a file: ``data`` ends with a newline (except at a clean file end).

    ``data`` may be given as the decompressor's blocks; they are joined on first access, in
    whichever thread parses the chunk, so the thread that reads the file only counts lines.
    """

    __slots__ = ("_parts", "_data", "first_line", "n_lines")

    def __init__(self, data: bytes | Sequence[bytes], first_line: int, n_lines: int) -> None:
        if isinstance(data, bytes):
            self._data: bytes | None = data
            self._parts: Sequence[bytes] = ()
        else:
            self._data, self._parts = None, data
        self.first_line = first_line  # 1-based number of the first line in data
        self.n_lines = n_lines

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts = ()
        return self._data

    def __repr__(self) -> str:
        return f"LineChunk(first_line={self.first_line}, n_lines={self.n_lines})"


def count_newlines(data: bytes, step: int = 1 << 20) -> int:
    """Number of b"\\n" in ``data``; numpy compares outside the GIL, so parsing threads keep running."""
    arr = np.frombuffer(data, dtype=np.uint8)
    scratch = np.empty(min(step, arr.size), dtype=bool)
    total = 0
    for i in range(0, arr.size, step):
        part = arr[i : i + step]
        out = scratch[: part.size]
        np.equal(part, 10, out=out)
        total += int(np.count_nonzero(out))
    return total


@dataclass
class TruncatedTail:
    """What was left of a cut file after its last complete line."""

    line: int
    raw: bytes


# Decompressed bytes per line chunk. Below 32 MB on purpose: glibc's malloc maps every block of
# 32 MB or more afresh (its mmap threshold cannot go higher), so each chunk's pages were faulted
# in and zeroed again; smaller blocks come from its heap and are reused. The bench's 2 GB of
# comments: 562,290 page faults and 2.8 s of CPU to read them in 32 MB chunks, 57,966 and 1.6 s
# in 30 MB chunks (docs/benchmarks.md). A chunk can pass this by one decompressed block (1 MB).
CHUNK_BYTES = 30 * 1024 * 1024


def iter_line_chunks(
    path: Path,
    chunk_bytes: int = CHUNK_BYTES,
    on_compressed: Callable[[int], None] | None = None,
    max_expansion: int | None = None,
) -> Iterator[LineChunk | TruncatedTail]:
    """Yield :class:`LineChunk` s of about ``chunk_bytes``; a cut file ends with a TruncatedTail.

    Decompression runs in a background thread (zstd and zlib release the GIL), so it overlaps
    with whatever the caller does with the previous chunk. The caller decides what a truncated
    file means (stop, or quarantine the tail).
    """
    parts: list[bytes] = []
    size = 0
    next_line = 1

    def flush(upto_newline: bool) -> LineChunk | None:
        nonlocal parts, size, next_line
        rest = b""
        if upto_newline:
            # cut after the last newline; only the block holding it is sliced, so every byte is
            # copied once (by the join)
            k = next(i for i in range(len(parts) - 1, -1, -1) if b"\n" in parts[i])
            cut = parts[k].rfind(b"\n") + 1
            rest = b"".join([parts[k][cut:], *parts[k + 1 :]])
            parts = [*parts[:k], parts[k][:cut]]
        data = [p for p in parts if p]
        parts, size = ([rest], len(rest)) if rest else ([], 0)
        if not data:
            return None
        newlines = sum(count_newlines(p) for p in data)
        n = newlines if data[-1].endswith(b"\n") else newlines + 1
        chunk = LineChunk(data, next_line, n)
        next_line += newlines
        return chunk

    first = True
    try:
        for block in _prefetch(iter_blocks(path, on_compressed=on_compressed, max_expansion=max_expansion)):
            if first:
                # a UTF-8 byte-order mark (files saved by some Windows tools) is not data
                block = block.removeprefix(b"\xef\xbb\xbf")
                first = False
            parts.append(block)
            size += len(block)
            if size >= chunk_bytes and b"\n" in block:
                chunk = flush(upto_newline=True)
                if chunk:
                    yield chunk
    except _Truncated:
        if any(b"\n" in part for part in parts):
            chunk = flush(upto_newline=True)
            if chunk:
                yield chunk
        yield TruncatedTail(next_line, b"".join(parts))
        return
    chunk = flush(upto_newline=False)
    if chunk:
        yield chunk


def _prefetch(blocks: Iterator[bytes], depth: int = 8) -> Iterator[bytes]:
    """Run ``blocks`` in a thread, ``depth`` items ahead; exceptions reach the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for b in blocks:
                while not stop.is_set():
                    try:
                        q.put(b, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def map_chunks_in_order(fn: Callable, items: Iterable, threads: int) -> Iterator:
    """``fn(item)`` for each item on ``threads`` threads, results in input order, few in flight.

    For work that releases the GIL (Arrow parsing, polars): parallel on every core, bounded
    memory, deterministic output order.
    """
    if threads <= 1:
        for item in items:
            yield fn(item)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# --------------------------------------------------------------------------- NDJSON


@dataclass
class BadRecord:
    line: int
    reason: str
    detail: str
    raw: str


@dataclass
class ParsedChunk:
    table: pa.Table  # rows in file order, typed by the schema
    lines: np.ndarray  # 1-based line number of each row
    bad: list[BadRecord] = field(default_factory=list)
    coerced: int = 0  # values accepted after a documented coercion (e.g. "123" for an integer)


def parse_ndjson(chunk: LineChunk, schema: pa.Schema, use_threads: bool = True) -> ParsedChunk:
    """Parse a chunk of JSON lines into ``schema`` (extra fields ignored, missing fields null).

    Wrong types, malformed JSON and non-object lines become :class:`BadRecord` s; numbers given as
    numeric strings and integral floats for integer fields are accepted (counted in ``coerced``).
    """
    data = chunk.data
    lines = np.arange(chunk.first_line, chunk.first_line + chunk.n_lines, dtype=np.int64)
    from pipelines.core import jsonscan  # imports numba: only processes that parse JSON lines pay for it

    if jsonscan.supports(schema):  # the ordinary chunk (blank lines and \r included in "not ordinary")
        table = jsonscan.scan_ndjson(data, chunk.n_lines, schema)
        if table is not None:
            return ParsedChunk(table, lines)
    if b"\n\n" not in data and not data.startswith(b"\n") and b"\r" not in data:
        try:
            table = pajson.read_json(
                pa.BufferReader(pa.py_buffer(data)),  # no copy (a BytesIO is copied through Python)
                read_options=pajson.ReadOptions(
                    block_size=max(1 << 20, min(len(data) + 1, 8 << 20)), use_threads=use_threads
                ),
                parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
            if table.num_rows == chunk.n_lines:
                table.validate(full=True)  # Arrow's JSON reader lets invalid UTF-8 through
                return ParsedChunk(table.select(schema.names), lines)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return _parse_slow(chunk, schema)


def _parse_slow(chunk: LineChunk, schema: pa.Schema) -> ParsedChunk:
    rows: list[dict] = []
    lines: list[int] = []
    bad: list[BadRecord] = []
    coerced = 0
    for offset, raw in enumerate(chunk.data.split(b"\n")):
        line_no = chunk.first_line + offset
        if offset >= chunk.n_lines:
            break
        text_line = raw.rstrip(b"\r")
        if not text_line.strip():
            continue  # blank lines are not records
        try:
            obj = json.loads(text_line)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            bad.append(BadRecord(line_no, "malformed_json", f"not valid JSON: {exc}", _raw(text_line)))
            continue
        if not isinstance(obj, dict):
            bad.append(
                BadRecord(line_no, "not_an_object", f"expected a JSON object, got {type(obj).__name__}", _raw(text_line))
            )
            continue
        row, problem, n_coerced = _conform(obj, schema)
        if problem:
            bad.append(BadRecord(line_no, "wrong_type", problem, _raw(text_line)))
            continue
        coerced += n_coerced
        rows.append(row)
        lines.append(line_no)
    table = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
    return ParsedChunk(table, np.asarray(lines, dtype=np.int64), bad, coerced)


def _raw(line: bytes) -> str:
    return line[: RAW_LIMIT * 4].decode("utf-8", errors="replace")[:RAW_LIMIT]


def _conform(obj: dict, schema: pa.Schema) -> tuple[dict, str | None, int]:
    row: dict = {}
    coerced = 0
    for f in schema:
        value = obj.get(f.name)
        if value is None:
            row[f.name] = None
            continue
        t = f.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            if not isinstance(value, str):
                return row, f"field '{f.name}': expected a string, got {_json_type(value)}", 0
            # a lone UTF-16 surrogate escape ("\ud83d" without its pair), common in Reddit dumps
            # where an emoji was cut: repaired to U+FFFD rather than losing the record
            repaired = repair_surrogates(value)
            if repaired is not value:
                value, coerced = repaired, coerced + 1
        elif pa.types.is_integer(t):
            if isinstance(value, bool):
                return row, f"field '{f.name}': expected an integer, got a boolean", 0
            if isinstance(value, int):
                if not _fits(value, t):
                    return row, f"field '{f.name}': the integer {_short(value)} does not fit in {t}", 0
            elif isinstance(value, float) and math.isfinite(value) and value == int(value):
                value, coerced = int(value), coerced + 1
            elif isinstance(value, str) and _is_int_string(value) and _fits(int(float(value)), t):
                value, coerced = int(float(value)), coerced + 1
            else:
                return row, f"field '{f.name}': expected an integer, got {_json_type(value)} {_short(value)}", 0
        elif pa.types.is_floating(t):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                if isinstance(value, str) and _is_float_string(value):
                    value, coerced = float(value), coerced + 1
                else:
                    return row, f"field '{f.name}': expected a number, got {_json_type(value)}", 0
        elif pa.types.is_boolean(t):
            if not isinstance(value, bool):
                return row, f"field '{f.name}': expected true/false, got {_json_type(value)}", 0
        else:  # nested and other types (struct, list, ...): Arrow decides, a misfit is this record's problem
            if pa.types.is_struct(t) and not isinstance(value, dict):
                return row, f"field '{f.name}': expected an object, got {_json_type(value)}", 0
            if (pa.types.is_list(t) or pa.types.is_large_list(t)) and not isinstance(value, list):
                return row, f"field '{f.name}': expected an array, got {_json_type(value)}", 0
            try:
                pa.scalar(value, type=t)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                return row, f"field '{f.name}': expected {t}, got {_json_type(value)} ({str(exc)[:80]})", 0
        row[f.name] = value
    return row, None, coerced


def _fits(value: int, t: pa.DataType) -> bool:
    bits = t.bit_width
    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if pa.types.is_signed_integer(t) else (0, 1 << bits)
    return low <= value < high


def _is_int_string(s: str) -> bool:
    try:
        v = float(s)
    except ValueError:
        return False
    return math.isfinite(v) and v == int(v)


def _is_float_string(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def _json_type(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _short(value: object) -> str:
    s = json.dumps(value, ensure_ascii=False)
    return s if len(s) <= 40 else s[:37] + "..."


def expand_inputs(inputs: Iterable[Path | str], patterns: tuple[str, ...] = ("*",)) -> list[Path]:
    """Files given directly plus the files inside given directories (recursively, sorted).

    Hidden files and our own temporary files are skipped. A path that does not exist is an
    :class:`InputError`.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise InputError(p, "no such file or directory", "Check the path given to --input")
        if p.is_dir():
            found = sorted(
                f for pat in patterns for f in p.rglob(pat) if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise InputError(p, "the directory holds no input files", "Point --input at the dump files or their folder")
            files.extend(found)
        else:
            files.append(p)
    unique: dict[Path, None] = {}
    for f in files:
        unique.setdefault(f.resolve(), None)
    return list(unique)


def load_json_file(path: Path) -> object:
    """A whole JSON input file (UTF-8, a BOM allowed); bad JSON or encoding is an InputError naming it."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg})", "Fix or re-download the file", line=exc.lineno) from exc
    except UnicodeDecodeError as exc:
        with open(path, "rb") as f:
            head = f.read(4)
        encoding = next((name for bom, name in _TEXT_BOMS if head.startswith(bom)), None)
        what = f"{encoding} text, not UTF-8" if encoding else f"not UTF-8 text ({exc.reason})"
        raise InputError(path, what, "Re-encode the file as UTF-8") from exc
    except RecursionError:
        raise InputError(path, "JSON nested too deeply to read (thousands of levels)", "Fix or re-download the file") from None
