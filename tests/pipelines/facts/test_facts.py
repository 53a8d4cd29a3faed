"""The fact readers: the real KLAR folder, table files in three formats, every bad-input case."""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.errors import InputError
from pipelines.facts.facts import TEMPLATES_SCHEMA, check_parallel, read_facts
from schemas.facts import FACTS
from schemas.rejects import REJECTS

REPO = Path(__file__).resolve().parents[3]
KLAR = Path(os.environ.get("KLAR_DIR", REPO.parent / "shared" / "data" / "klar"))
needs_klar = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")


# --------------------------------------------------------------------------- the real KLAR


@needs_klar
def test_real_klar_folder() -> None:
    read = read_facts(KLAR)
    facts = read.facts
    assert facts.schema == FACTS.polars_schema()
    assert facts.height == 14_364
    assert facts.get_column("fact_id").to_list() == list(range(14_364))
    assert facts.equals(facts.sort("lang", "relation", "index"))
    assert sorted(facts.get_column("lang").unique()) == sorted(["en", "fr", "es", "ar", "zh", "ru", "ja", "tr", "uk", "ca", "ko", "el"])
    assert read.rejects.height == 0 and read.dropped == {}
    assert read.counters["rows_in"] == read.counters["facts"] == 14_364
    assert read.counters["relation_mismatch"] == 0

    first = facts.filter(lang="en", relation="native_language").row(0, named=True)
    assert (first["subject"], first["object"], first["index"]) == ("Russians", "Russian", 4853)
    assert first["subject_aliases"] == [] and first["object_aliases"] == []

    parallel = check_parallel(facts)
    assert parallel["parallel"] and parallel["identical_indices"]
    assert parallel["indices"] == 1197 and parallel["missing"] == {} and parallel["relation_mismatch"] == {}
    assert set(parallel["facts_per_language"].values()) == {1197}

    assert read.templates.schema == TEMPLATES_SCHEMA
    assert read.templates.height == 144
    en = read.templates.filter(lang="en", relation="native_language").get_column("template").to_list()
    assert en == ["What is the native language of <subject>? The answer is: <mask>"]


# --------------------------------------------------------------------------- tables round-trip

ROWS = [
    {"lang": "en", "relation": "capital_of", "index": 2, "subject": " New York ", "object": "USA",
     "subject_aliases": ["NYC", " New York City ", "", "New York", "NYC"], "object_aliases": ["United States"]},
    {"lang": "en", "relation": "capital_of", "index": 1, "subject": "Paris", "object": "France",
     "subject_aliases": [], "object_aliases": None},
    {"lang": "fr", "relation": "capital_of", "index": 1, "subject": "Paris", "object": "France",
     "subject_aliases": ["Lutèce"], "object_aliases": []},
    {"lang": "ja", "relation": "religion", "index": 7, "subject": "ガンディー", "object": "ヒンドゥー教",
     "subject_aliases": [], "object_aliases": []},
]


def write_jsonl(path: Path, rows: list[dict], opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else ("" if v is None else v) for k, v in row.items()})
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pl.DataFrame(rows, schema={"lang": pl.String, "relation": pl.String, "index": pl.Int64, "subject": pl.String,
                               "object": pl.String, "subject_aliases": pl.List(pl.String), "object_aliases": pl.List(pl.String)}).write_parquet(path)
    return path


def test_tables_in_every_format_read_to_the_same_frame(tmp_path: Path) -> None:
    reads = [
        read_facts(write_jsonl(tmp_path / "facts.jsonl", ROWS)),
        read_facts(write_jsonl(tmp_path / "facts.jsonl.gz", ROWS, gzip.open)),
        read_facts(write_csv(tmp_path / "facts.csv", ROWS)),
        read_facts(write_parquet(tmp_path / "facts.parquet", ROWS)),
    ]
    first = reads[0]
    assert first.facts.schema == FACTS.polars_schema()
    assert first.facts.select("lang", "index", "subject", "subject_aliases").rows() == [
        ("en", 1, "Paris", []),
        ("en", 2, "New York", ["NYC", "New York City"]),
        ("fr", 1, "Paris", ["Lutèce"]),
        ("ja", 7, "ガンディー", []),
    ]
    assert first.facts.get_column("object_aliases").to_list() == [[], ["United States"], [], []]
    assert first.counters["alias_empty"] == 1
    assert first.counters["alias_same_as_main"] == 1
    assert first.counters["alias_duplicate"] == 1
    assert first.rejects.height == 0 and first.templates.height == 0
    for other in reads[1:]:
        assert other.facts.equals(first.facts)
        assert other.counters == first.counters


def test_alias_columns_are_optional(tmp_path: Path) -> None:
    rows = [{k: v for k, v in row.items() if not k.endswith("_aliases")} for row in ROWS]
    for path in (write_jsonl(tmp_path / "f.jsonl", rows), write_csv(tmp_path / "f.csv", rows)):
        facts = read_facts(path).facts
        assert facts.height == 4
        assert facts.get_column("subject_aliases").to_list() == [[]] * 4


def test_klar_layout_and_table_agree(tmp_path: Path) -> None:
    root = tmp_path / "klar"
    for lang, relation in {(r["lang"], r["relation"]) for r in ROWS}:
        samples = [{k: v for k, v in r.items() if k not in ("lang", "relation")} for r in ROWS if (r["lang"], r["relation"]) == (lang, relation)]
        (root / lang).mkdir(parents=True, exist_ok=True)
        doc = {"relation": relation, "language": lang, "prompt_templates": [f"{relation} of <subject> is <mask>"], "samples": samples}
        (root / lang / f"{relation}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    (root / "README.md").write_text("not data")
    klar = read_facts(root)
    table = read_facts(write_jsonl(tmp_path / "facts.jsonl", ROWS))
    assert klar.facts.equals(table.facts)
    assert klar.counters["files_ignored"] == 1
    assert klar.templates.rows() == [
        ("en", "capital_of", "capital_of of <subject> is <mask>"),
        ("fr", "capital_of", "capital_of of <subject> is <mask>"),
        ("ja", "religion", "religion of <subject> is <mask>"),
    ]


# --------------------------------------------------------------------------- bad input

BAD_KLAR = """\
{
  "relation": "capital_of",
  "language": "en",
  "prompt_templates": ["<subject> is the capital of <mask>"],
  "samples": [
    {"subject": "Paris", "object": "France", "index": 1},
    {"subject": "  ", "object": "Spain", "index": 2},
    {"subject": "Rome", "object": 5, "index": 3},
    {"subject": "Bern", "object": "Switzerland"},
    {"subject": "Oslo", "object": "Norway", "index": "4"},
    ["Lima", "Peru", 5],
    {"subject": "Paris", "object": "France", "index": 1},
    {"subject": "Berlin", "object": "Germany", "index": 6, "subject_aliases": "Berlin, DE"},
    {"subject": null, "object": "Austria", "index": 7},
    {"subject": "Kyiv", "object": "Ukraine", "index": 8, "subject_aliases": ["Kiev", null, " "]}
  ]
}
"""


def test_bad_klar_records_are_quarantined_with_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "klar"
    (root / "en").mkdir(parents=True)
    (root / "fr").mkdir()
    bad = root / "en" / "capital_of.json"
    bad.write_text(BAD_KLAR, encoding="utf-8")
    # index 8 again under another relation of the same language: a duplicate
    (root / "en" / "religion.json").write_text(json.dumps({"samples": [{"subject": "Kyiv", "object": "Orthodoxy", "index": 8}]}))
    # index 1 under another relation in French: kept, counted as a relation mismatch
    (root / "fr" / "religion.json").write_text(json.dumps({"samples": [{"subject": "Paris", "object": "France", "index": 1}]}))

    read = read_facts(root)
    assert read.rejects.schema == REJECTS.polars_schema()
    got = read.rejects.select("drop_reason", "source_file", "line").rows()
    src = str(bad)
    assert got == [
        ("empty_phrase", src, 7),
        ("empty_phrase", src, 8),
        ("bad_record", src, 9),
        ("bad_record", src, 10),
        ("bad_record", src, 11),
        ("duplicate_index", src, 12),
        ("bad_record", src, 13),
        ("empty_phrase", src, 14),
        ("duplicate_index", str(root / "en" / "religion.json"), 1),
    ]
    details = read.rejects.get_column("detail").to_list()
    assert details[0] == "subject is whitespace only"
    assert "object is not a string" in details[1]
    assert "missing field(s) index" in details[2]
    assert "index must be an integer" in details[3]
    assert "expected a JSON object, got an array" in details[4]
    assert f"already read at {src}:6" in details[5]
    assert "subject_aliases must be a JSON array" in details[6]
    assert "subject is null" in details[7]
    assert f"already read at {src}:15" in details[8]
    assert read.rejects.get_column("record_id").to_list()[0] == "en/capital_of/2"
    assert read.dropped == {"bad_record": 4, "duplicate_index": 2, "empty_phrase": 3}

    facts = read.facts
    assert facts.select("lang", "relation", "index").rows() == [
        ("en", "capital_of", 1), ("en", "capital_of", 8), ("fr", "religion", 1)
    ]
    assert facts.filter(index=8).get_column("subject_aliases").to_list() == [["Kiev"]]
    assert read.counters["alias_empty"] == 2
    assert read.counters["relation_mismatch"] == 1
    assert read.counters["rows_in"] == 12

    parallel = check_parallel(facts)
    assert parallel["relation_mismatch"] == {1: {"en": "capital_of", "fr": "religion"}}
    assert parallel["missing"] == {"fr": [8]}
    assert not parallel["parallel"] and not parallel["identical_indices"]


def _read_written(path: Path, text: str):
    path.write_text(text, encoding="utf-8")
    read = read_facts(path)
    assert set(read.rejects.get_column("source_file")) <= {str(path)}
    return read, read.rejects.select("drop_reason", "line").rows(), read.rejects.get_column("detail").to_list()


def test_bad_jsonl_rows_name_file_and_line(tmp_path: Path) -> None:
    jsonl = tmp_path / "facts.jsonl"
    read, got, details = _read_written(jsonl, "\n".join([
        '{"lang": "en", "relation": "r", "index": 1, "subject": "a", "object": "b"}',
        "",
        '{"lang": "en", "relation": "r", "index": 2, "subject": "a", "object": ',
        '{"lang": "en", "relation": "r", "index": 1, "subject": "c", "object": "d"}',
        '{"lang": "", "relation": "r", "index": 3, "subject": "a", "object": "b"}',
        '{"lang": "en", "relation": "r", "index": true, "subject": "a", "object": "b"}',
        '{"lang": "en", "relation": "r", "index": 4, "subject": "", "object": "b"}',
    ]))
    assert got == [("bad_record", 3), ("duplicate_index", 4), ("bad_record", 5), ("bad_record", 6), ("empty_phrase", 7)]
    assert "not valid JSON" in details[0]
    assert read.rejects.get_column("raw")[0].startswith('{"lang": "en", "relation": "r", "index": 2')
    assert f"{jsonl}:1" in details[1]
    assert "lang must be a non-empty string" in details[2] and "index must be an integer, got a boolean" in details[3]
    assert details[4] == "subject is empty"
    assert read.facts.height == 1


def test_bad_csv_rows_name_file_and_line(tmp_path: Path) -> None:
    read, got, details = _read_written(tmp_path / "facts.csv", (
        "lang,relation,index,subject,object,subject_aliases\n"
        'en,r,1,"New\nYork",USA,"[""NYC""]"\n'  # a quoted cell spanning two lines
        "en,r,2,Paris,France,NYC\n"
        "en,r,3x,Rome,Italy,\n"
        "en,r,4,,Spain,\n"
        "en,r,5,Oslo\n"
        'en,r,6,Bern,Switzerland,"[1, 2]"\n'
    ))
    assert got == [("bad_record", 4), ("bad_record", 5), ("empty_phrase", 6), ("bad_record", 7), ("bad_record", 8)]
    assert "JSON array of strings" in details[0]
    assert 'index must be an integer, got a string "3x"' in details[1]
    assert "4 cells where the header has 6" in details[3]
    assert read.facts.select("subject", "subject_aliases").rows() == [("New\nYork", ["NYC"])]


def test_bad_parquet_row_names_its_row(tmp_path: Path) -> None:
    parquet = tmp_path / "facts.parquet"
    pl.DataFrame({"lang": ["en", "en"], "relation": ["r", "r"], "index": [1, 2], "subject": ["a", None], "object": ["b", "c"]}).write_parquet(parquet)
    read = read_facts(parquet)
    assert read.rejects.select("drop_reason", "source_file", "line", "detail").rows() == [
        ("empty_phrase", str(parquet), 2, "subject is null")
    ]


@pytest.mark.parametrize(
    "setup,problem",
    [
        (lambda p: p / "absent", "no such facts folder or file"),
        (lambda p: _write(p / "facts.xlsx", "x"), "unknown facts file type"),
        (lambda p: _write(p / "klar" / "en" / "capital_of.json", '{"samples": [ {"subject": "a",}]}'), "not valid JSON"),
        (lambda p: _write(p / "klar" / "en" / "capital_of.json", '{"language": "fr", "samples": []}'), "the file says language 'fr'"),
        (lambda p: _write(p / "klar" / "en" / "capital_of.json", '[{"subject": "a"}]'), 'expected a JSON object with a "samples" list'),
        (lambda p: _write(p / "klar" / "en" / "notes.txt", "x"), "a language folder without <relation>.json files"),
        (lambda p: (p / "klar").mkdir() or p / "klar", "no language folders here"),
        (lambda p: _write(p / "facts.csv", "lang,relation,index,subject\nen,r,1,a\n"), "the header lacks column(s) object"),
        (lambda p: _write(p / "facts.parquet", "PAR1 not really"), "not a readable parquet file"),
        (lambda p: _truncated_gz(p / "facts.jsonl.gz"), "truncated"),
    ],
)
def test_unreadable_inputs_are_input_errors(tmp_path: Path, setup, problem: str) -> None:
    path = setup(tmp_path)
    if path.name == "capital_of.json" or path.name == "notes.txt":
        path = path.parent.parent
    with pytest.raises(InputError) as info:
        read_facts(path)
    assert problem in str(info.value)
    assert info.value.fix


def test_bad_klar_json_names_the_file_and_line(tmp_path: Path) -> None:
    bad = _write(tmp_path / "klar" / "en" / "capital_of.json", '{\n "samples": [\n  {"subject": "a",}\n ]\n}\n')
    with pytest.raises(InputError) as info:
        read_facts(tmp_path / "klar")
    assert info.value.path == str(bad) and info.value.line == 3


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _truncated_gz(path: Path) -> Path:
    rows = [json.dumps({"lang": "en", "relation": "r", "index": i, "subject": f"s{i}", "object": "o"}) for i in range(2000)]
    data = gzip.compress(("\n".join(rows) + "\n").encode())
    path.write_bytes(data[: len(data) // 2])
    return path
