"""The compiled JSON-lines scanner: the same table as json.loads and Arrow where it applies,
``None`` (the caller falls back) wherever it does not."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.json as pajson
import pytest

from pipelines.core import jsonscan
from pipelines.core.readers import LineChunk, _parse_slow, parse_ndjson

SCHEMA = pa.schema([("id", pa.string()), ("body", pa.string()), ("created_utc", pa.int64()), ("author", pa.string())])

_PIECES = ["a", "Z", " ", "\n", "\t", '"', "\\", "/", "\x01", "\x1f", "é", "ß", "漢", "😀", "\u2028", "\ufeff", "&amp;", "<", "}", "]", ",", ":"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 12)))


def _ignored(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return _text(rng)
    if kind == 1:
        return rng.choice([0, -7, 12345678901234567890, 1.5, -2.5e-3, 1e300])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4):
        return rng.randrange(-(10**18) + 1, 10**18)
    if kind in (5, 6):
        return {_text(rng) or "k": _ignored(rng, depth + 1) for _ in range(rng.randrange(0, 3))}
    return [_ignored(rng, depth + 1) for _ in range(rng.randrange(0, 3))]


def _record(rng: random.Random) -> dict:
    obj: dict = {}
    fields = [("id", lambda: _text(rng)), ("body", lambda: _text(rng)), ("author", lambda: _text(rng)),
              ("created_utc", lambda: rng.choice([0, -1, 1420072874, 10**18 - 1, -(10**18) + 1]))]
    for name, value in fields + [(f"x{i}", lambda: _ignored(rng)) for i in range(3)]:
        roll = rng.random()
        if roll < 0.15:
            continue  # absent
        obj[name] = None if roll < 0.25 else value()
    keys = list(obj)
    rng.shuffle(keys)
    return {k: obj[k] for k in keys}


def _dump(obj: dict, rng: random.Random) -> str:
    sep = rng.choice([(",", ":"), (", ", ": "), (" ,\t", " : ")])
    return json.dumps(obj, ensure_ascii=rng.random() < 0.5, separators=sep)


def _arrow(data: bytes) -> pa.Table:
    return pajson.read_json(
        pa.BufferReader(pa.py_buffer(data)),
        parse_options=pajson.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore"),
    ).select(SCHEMA.names)


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_chunks_equal_json_loads_and_arrow(seed):
    rng = random.Random(seed)
    lines = [_dump(_record(rng), rng) for _ in range(400)]
    data = ("\n".join(lines) + ("\n" if seed % 2 else "")).encode()
    table = jsonscan.scan_ndjson(data, len(lines), SCHEMA)
    assert table is not None
    expected = [{name: json.loads(line).get(name) for name in SCHEMA.names} for line in lines]
    assert table.to_pylist() == expected
    assert table.equals(_arrow(data))
    assert table.equals(_parse_slow(LineChunk(data, 1, len(lines)), SCHEMA).table)


@pytest.mark.parametrize(
    "line,why",
    [
        ('{"id": "a"', "unterminated object"),
        ('{"id": "a"} x', "text after the object"),
        ('["id"]', "not an object"),
        ("   ", "blank line"),
        ('{"id": "a",}', "trailing comma"),
        ('{"x": [1,]}', "trailing comma in an ignored array"),
        ('{"x": 01}', "leading zero"),
        ('{"x": NaN}', "NaN is not JSON"),
        ('{"x": tru}', "broken literal"),
        ('{"x": "\\q"}', "unknown escape"),
        ('{"x": "\\ud83d"}', "lone high surrogate in an ignored field"),
        ('{"body": "\\ude00"}', "lone low surrogate"),
        ('{"body": "a\\u0000b"}', "NUL escape"),
        ('{"id": "a", "id": "b"}', "wanted field twice"),
        ('{"id": 5}', "number for a string"),
        ('{"created_utc": "5"}', "string for an integer (the slower readers coerce it)"),
        ('{"created_utc": 5.0}', "float for an integer"),
        ('{"created_utc": 1234567890123456789}', "19 digits"),
        ('{"i\\u0064": "a"}', "escaped key"),
        ('{"ïd": "a"}', "non-ASCII key"),
        ('{"x": ' + "[" * 65 + "]" * 65 + "}", "nesting deeper than 64"),
        ('{"body": "a\rb"}', "raw control character in a string"),
        ('{"id": "a"}\r', "carriage return"),
    ],
)
def test_what_it_does_not_handle_falls_back(line, why):
    data = ('{"id": "ok"}\n' + line + "\n").encode()
    assert jsonscan.scan_ndjson(data, 2, SCHEMA) is None, why


@pytest.mark.parametrize(
    "raw,why",
    [
        (b"\xc3", "truncated sequence"),
        (b"\xc0\xaf", "overlong"),
        (b"\xed\xa0\x80", "encoded surrogate"),
        (b"\xf4\x90\x80\x80", "beyond U+10FFFF"),
        (b"\x80", "lone continuation byte"),
    ],
)
def test_invalid_utf8_anywhere_falls_back(raw, why):
    for field in ("body", "ignored"):
        data = b'{"' + field.encode() + b'": "a' + raw + b'b"}\n'
        assert jsonscan.scan_ndjson(data, 1, SCHEMA) is None, why


def test_line_count_must_match():
    data = b'{"id": "a"}\n{"id": "b"}\n'
    assert jsonscan.scan_ndjson(data, 3, SCHEMA) is None
    assert jsonscan.scan_ndjson(data, 1, SCHEMA) is None
    assert jsonscan.scan_ndjson(data, 2, SCHEMA).column("id").to_pylist() == ["a", "b"]


def test_other_field_types_are_not_claimed():
    assert not jsonscan.supports(pa.schema([("x", pa.float64())]))
    assert not jsonscan.supports(pa.schema([("x", pa.list_(pa.string()))]))
    assert jsonscan.supports(SCHEMA)


def test_parse_ndjson_results_are_unchanged_where_the_scanner_steps_aside():
    # a chunk with one bad line: the scanner declines, the line-by-line path quarantines it
    data = b'{"id": "a", "created_utc": 1}\n{"id": \n{"id": "c", "created_utc": "7"}\n'
    parsed = parse_ndjson(LineChunk(data, 10, 3), SCHEMA)
    assert parsed.table.column("id").to_pylist() == ["a", "c"]
    assert parsed.table.column("created_utc").to_pylist() == [1, 7]
    assert [(b.line, b.reason) for b in parsed.bad] == [(11, "malformed_json")]
    assert parsed.coerced == 1
    assert parsed.lines.tolist() == [10, 12]


def test_a_chunk_too_large_for_the_reserved_space_takes_the_slower_path(monkeypatch):
    data = b'{"id": "a", "created_utc": 1}\n' * 4
    assert jsonscan.scan_ndjson(data, 4, SCHEMA) is not None
    strings = sum(1 for f in SCHEMA if f.type == pa.string())
    monkeypatch.setattr(jsonscan, "MAX_RESERVED", strings * len(data) - 1)
    assert jsonscan.scan_ndjson(data, 4, SCHEMA) is None
    parsed = parse_ndjson(LineChunk(data, 1, 4), SCHEMA)  # the same rows through Arrow's reader
    assert parsed.table.column("id").to_pylist() == ["a"] * 4 and not parsed.bad


def test_values_land_in_their_own_field_whatever_the_key_order():
    data = (
        b'{"created_utc": 5, "body": "x\\ny", "id": "a"}\n'
        b'{"id": "b", "nested": {"id": "not me"}, "body": null}\n'
        b'{"body": "\\u00e9\\ud83d\\ude00", "created_utc": -12, "id": "c"}\n'
    )
    table = jsonscan.scan_ndjson(data, 3, pa.schema([("id", pa.string()), ("body", pa.string()), ("created_utc", pa.int64())]))
    assert table.to_pylist() == [
        {"id": "a", "body": "x\ny", "created_utc": 5},
        {"id": "b", "body": None, "created_utc": None},
        {"id": "c", "body": "é😀", "created_utc": -12},
    ]
