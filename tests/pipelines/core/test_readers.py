"""Readers: compression by magic bytes, truncation, line chunks, NDJSON quarantine."""

from __future__ import annotations

import gzip
import bz2
import json

import pyarrow as pa
import pytest
import zstandard

from pipelines.core import readers
from pipelines.core.errors import InputError
from pipelines.core.readers import (
    LineChunk,
    TruncatedTail,
    count_newlines,
    detect_compression,
    iter_line_chunks,
    parse_ndjson,
)

SCHEMA = pa.schema([("id", pa.string()), ("n", pa.int64()), ("x", pa.float64())])
LINES = [json.dumps({"id": f"r{i}", "n": i, "x": i / 2, "extra": {"a": [1]}}) for i in range(2000)]
DATA = ("\n".join(LINES) + "\n").encode()


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "name,data,kind",
    [
        ("a.jsonl", DATA, "none"),
        ("a.jsonl.gz", gzip.compress(DATA), "gz"),
        ("a.jsonl.zst", zstandard.ZstdCompressor().compress(DATA), "zst"),
        ("misnamed.gz", zstandard.ZstdCompressor().compress(DATA), "zst"),
    ],
)
def test_compression_is_recognised_by_content(tmp_path, name, data, kind):
    path = _write(tmp_path, name, data)
    assert detect_compression(path) == kind
    chunks = [c for c in iter_line_chunks(path, chunk_bytes=10_000)]
    assert all(isinstance(c, LineChunk) for c in chunks)
    assert b"".join(c.data for c in chunks) == DATA
    # line numbers are continuous across chunks
    assert [c.first_line for c in chunks] == [1] + [sum(c.n_lines for c in chunks[:i]) + 1 for i in range(1, len(chunks))]
    assert sum(c.n_lines for c in chunks) == 2000


def test_unsupported_compression_names_file_and_fix(tmp_path):
    path = _write(tmp_path, "dump.jsonl.bz2", bz2.compress(DATA))
    with pytest.raises(InputError) as err:
        detect_compression(path)
    msg = str(err.value)
    assert str(path) in msg and "unsupported compression 'bz2'" in msg and "zstd" in msg


def test_unknown_binary_format_is_refused(tmp_path):
    path = _write(tmp_path, "dump.bin", bytes(range(256)) * 4)
    with pytest.raises(InputError, match="unknown format"):
        detect_compression(path)


@pytest.mark.parametrize("compress", [lambda d: zstandard.ZstdCompressor().compress(d), gzip.compress])
def test_truncated_stream_ends_with_a_tail(tmp_path, compress):
    blob = compress(DATA * 20)
    path = _write(tmp_path, "cut.bin", blob[: len(blob) // 2])
    items = list(iter_line_chunks(path, chunk_bytes=50_000))
    assert isinstance(items[-1], TruncatedTail)
    complete = items[:-1]
    assert all(isinstance(c, LineChunk) for c in complete)
    n_complete = sum(c.n_lines for c in complete)
    assert items[-1].line == n_complete + 1
    # every complete line is an intact record
    for c in complete:
        for line in c.data.splitlines():
            json.loads(line)


def test_parse_fast_path_ignores_extra_fields():
    parsed = parse_ndjson(LineChunk(DATA, 1, 2000), SCHEMA)
    assert parsed.table.num_rows == 2000 and not parsed.bad
    assert parsed.lines[0] == 1 and parsed.lines[-1] == 2000
    assert parsed.table.column("n").to_pylist()[:3] == [0, 1, 2]


def test_parse_quarantines_bad_lines_with_line_numbers_and_reasons():
    lines = [
        '{"id": "a", "n": 1}',
        "{not json",
        "[1, 2]",
        '{"id": "b", "n": "7"}',  # numeric string: accepted, counted as coerced
        '{"id": "c", "n": 1.0}',  # integral float: accepted
        '{"id": "d", "n": 1.5}',  # not an integer
        '{"id": 5}',  # wrong type
        "",  # blank line: not a record
        '{"id": "e", "x": "abc"}',
        '{"id": "f", "n": [1]}',
    ]
    data = ("\n".join(lines) + "\n").encode()
    parsed = parse_ndjson(LineChunk(data, 101, len(lines)), SCHEMA)
    assert parsed.table.column("id").to_pylist() == ["a", "b", "c"]
    assert parsed.table.column("n").to_pylist() == [1, 7, 1]
    assert list(parsed.lines) == [101, 104, 105]
    assert parsed.coerced == 2
    bad = {(b.line, b.reason) for b in parsed.bad}
    assert bad == {
        (102, "malformed_json"),
        (103, "not_an_object"),
        (106, "wrong_type"),
        (107, "wrong_type"),
        (109, "wrong_type"),
        (110, "wrong_type"),
    }
    details = {b.line: b.detail for b in parsed.bad}
    assert details[107] == "field 'id': expected a string, got an integer"
    assert "expected an integer" in details[106]
    assert {b.line: b.raw for b in parsed.bad}[102] == "{not json"


def test_lone_surrogate_escapes_are_repaired_not_fatal():
    lines = [r'{"id": "a", "n": 1}', r'{"id": "cut \ud83d emoji", "n": 2}', r'{"id": "pair \ud83d\ude00 ok", "n": 3}']
    data = ("\n".join(lines) + "\n").encode()
    parsed = parse_ndjson(LineChunk(data, 1, 3), SCHEMA)
    assert not parsed.bad
    assert parsed.table.column("id").to_pylist() == ["a", "cut \ufffd emoji", "pair \U0001F600 ok"]
    assert parsed.coerced == 1


def test_byte_order_mark_and_crlf_are_not_data(tmp_path):
    path = _write(tmp_path, "bom.jsonl", b"\xef\xbb\xbf" + DATA.replace(b"\n", b"\r\n"))
    chunks = list(iter_line_chunks(path))
    parsed = parse_ndjson(chunks[0], SCHEMA)
    assert not parsed.bad and parsed.table.num_rows == 2000
    assert parsed.table.column("id").to_pylist()[0] == "r0"


def test_line_chunk_joins_its_blocks_on_first_access():
    chunk = LineChunk([b'{"a": 1}\n{"a"', b': 2}\n'], 7, 2)
    assert (chunk.first_line, chunk.n_lines) == (7, 2)
    assert chunk.data == b'{"a": 1}\n{"a": 2}\n'
    assert chunk.data is chunk.data  # joined once
    assert LineChunk(b"x\n", 1, 1).data == b"x\n"


@pytest.mark.parametrize("data", [b"", b"\n", b"abc", b"a\nb\n" * 700_000, b"\n" * 3 + b"x" * (1 << 20) + b"\n"])
def test_count_newlines_agrees_with_bytes_count(data):
    assert count_newlines(data, step=1 << 16) == data.count(b"\n")


def test_default_chunks_stay_under_glibc_fresh_mapping_size():
    from pipelines.sad.settings import SadSources

    # a chunk can pass chunk_bytes by one decompressed block (1 MB); 32 MB blocks are mapped afresh
    assert SadSources().chunk_bytes == readers.CHUNK_BYTES
    assert readers.CHUNK_BYTES + 1024 * 1024 < 32 * 1024 * 1024
