"""The bad-input corpus: hostile or broken inputs for the four pipelines, each with its outcome.

A :class:`Case` writes its input files into an empty folder (good records beside the bad ones)
and returns the ``corpusforge build`` arguments plus the good records that must reach the
output. Outcomes:

* ``kept``: no reject; every record is read correctly (e.g. a BOM-prefixed file);
* ``rejected``: the bad records are rejects with exactly ``reasons`` (drop_reason -> count, all
  steps together), the reject's record_id, detail or raw holds ``record``; the good ones survive;
* ``error``: the build stops with exit code 2, no traceback, and ``error`` in its message (an
  InputError naming the file and the fix). Nothing is half-built; good records of other files
  are not output (the whole build is refused on purpose).
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.badinputs import generate as g

NO_MODEL = ["--set", 'relaionet.similarity.encoder="none"', "--set", 'relaionet.ocr.backend="none"']


@dataclass
class Built:
    args: list[str]  # corpusforge arguments (without --workspace)
    good: set[str]  # ids (SAD node ids, reLAIONet sample ids, facts "<lang>:<index>", PolyRefuse English texts)
    good_docs: int | None = None  # facts: documents that mention the good fact en:1 (co-occurrence count)


@dataclass(frozen=True)
class Case:
    id: str
    pipeline: str  # sad | polyrefuse | facts | relaionet
    what: str
    build: Callable[[Path, random.Random], Built]
    outcome: str  # kept | rejected | error
    reasons: dict[str, int] = field(default_factory=dict)
    record: str = ""  # rejected: held by a reject's record_id, detail or raw
    line: int | None = None  # rejected: a reject's line (SAD: the good thread holds lines 1-3)
    error: str = ""  # error: a fragment of the message
    counters: dict[str, int] = field(default_factory=dict)  # minimum counter values in _stats.json
    bomb: bool = False  # run under a memory limit


# =========================================================================== SAD


def _sub(sid: str, **extra) -> dict:
    return {"id": sid, "title": "CMV: a topic", "selftext": g.LONG, "author": "op", "subreddit": "changemyview",
            "created_utc": 1_500_000_000, **extra}


def _com(cid: str, sid: str, parent: str, author: object, **extra) -> dict:
    return {"id": cid, "link_id": f"t3_{sid}", "parent_id": parent, "body": g.LONG, "author": author,
            "subreddit": "changemyview", "created_utc": 1_500_000_100, **extra}


def _thread(sid: str) -> list[dict]:
    return [_sub(sid), _com(f"{sid}a", sid, f"t3_{sid}", "x"), _com(f"{sid}b", sid, f"t1_{sid}a", "op")]


def _thread_ids(sid: str) -> set[str]:
    return {f"t3_{sid}", f"t1_{sid}a", f"t1_{sid}b"}


def sad(bad: list, *, compression: str = "none", bom: bool = False, newline: bytes = b"\n", name: str = "dump.jsonl") -> Callable:
    """A dump holding a good thread, the bad lines, another good thread."""

    def build(folder: Path, rng: random.Random) -> Built:
        rows = [*_thread("g1"), *bad, *_thread("g2")]
        g.write_lines(folder / "in" / name, rows, compression=compression, bom=bom, newline=newline)
        return Built(["build", "sad", "--input", str(folder / "in")], _thread_ids("g1") | _thread_ids("g2"))

    return build


def sad_files(write_bad: Callable[[Path], object], extra: tuple[str, ...] = ()) -> Callable:
    """A good dump plus a bad file written by ``write_bad(folder / 'in' / ...)``."""

    def build(folder: Path, rng: random.Random) -> Built:
        g.write_lines(folder / "in" / "good.jsonl", [*_thread("g1"), *_thread("g2")])
        write_bad(folder / "in")
        return Built(["build", "sad", "--input", str(folder / "in"), *extra], _thread_ids("g1") | _thread_ids("g2"))

    return build


def _bz2(folder: Path) -> None:
    import bz2

    (folder / "bad.jsonl.bz2").write_bytes(bz2.compress(json.dumps(_sub("b1")).encode() + b"\n"))


def _truncated_zst(folder: Path) -> None:
    g.truncate(g.write_lines(folder / "bad.jsonl.zst", [_sub(f"t{i}") for i in range(300)], compression="zst"), 0.5)


def _utf16(folder: Path) -> None:
    text = "".join(json.dumps(r) + "\n" for r in _thread("u1"))
    (folder / "bad.jsonl").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))


def _junk(folder: Path) -> None:
    rng = random.Random(7)
    (folder / "bad.jsonl").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(rng.getrandbits(8) for _ in range(4096)))


def _sad_zstd_bomb(folder: Path) -> None:
    g.zstd_bomb(folder / "bomb.jsonl.zst", 4 * g.GB)


def _sad_gzip_bomb(folder: Path) -> None:
    g.gzip_bomb(folder / "bomb.jsonl.gz", 2 * g.GB)


def _sad_giant_line(folder: Path, rng: random.Random) -> Built:
    good = [json.dumps(r) for r in _thread("g1")]
    after = [json.dumps(r) for r in _thread("g2")]
    g.giant_line(folder / "in" / "dump.jsonl", good, json.dumps(_com("gl", "g1", "t1_g1a", "x"))[:-1] + ', "junk": "', 48 << 20, after)
    return Built(["build", "sad", "--input", str(folder / "in")], _thread_ids("g1") | _thread_ids("g2"))


SAD_CASES = [
    Case("sad-bom", "sad", "a dump starting with a UTF-8 byte-order mark", sad([], bom=True), "kept"),
    Case("sad-crlf", "sad", "Windows line ends (CRLF) throughout", sad([], newline=b"\r\n"), "kept"),
    Case("sad-latin1-line", "sad", "a line in Latin-1, not UTF-8", sad([json.dumps(_com("l1", "g1", "t3_g1", "y")).replace(g.LONG, "caf\xe9").encode("latin-1")]),
         "rejected", {"malformed_json": 1}, record="caf"),
    Case("sad-nul-bytes", "sad", "a line of raw NUL bytes amid JSON", sad([b'{"id": "n1", \x00\x00\x00 "body": "x"}']),
         "rejected", {"malformed_json": 1}, record="n1"),
    Case("sad-nul-escaped", "sad", "an escaped NUL (\\u0000) inside a comment body", sad([_com("n2", "g1", "t3_g1", "y", body=g.LONG + "\u0000 end")]),
         "kept"),
    Case("sad-deep-json", "sad", "a line of JSON nested 100,000 deep", sad([g.deep_json()]), "rejected", {"malformed_json": 1}, record="[[[["),
    Case("sad-deep-object", "sad", "objects nested 100,000 deep (parsed by Arrow: neither kind)", sad([g.deep_object()]), "rejected", {"unknown_kind": 1}, line=4),
    Case("sad-wrong-schema", "sad", "a Twitter-style record: neither submission nor comment", sad([{"id_str": "1", "text": "hi", "user": {"name": "a"}}]),
         "rejected", {"unknown_kind": 1}, line=4),
    Case("sad-struct-for-string", "sad", "author given as an object", sad([_com("w1", "g1", "t3_g1", {"name": "y"})]),
         "rejected", {"wrong_type": 1}, record="author"),
    Case("sad-array-for-int", "sad", "created_utc given as an array", sad([_com("w2", "g1", "t3_g1", "y", created_utc=[1, 2])]),
         "rejected", {"wrong_type": 1}, record="created_utc"),
    Case("sad-huge-int", "sad", "created_utc = 10**30 (beyond 64 bits)", sad([_com("w3", "g1", "t3_g1", "y", created_utc=10**30)]),
         "rejected", {"wrong_type": 1}, record="created_utc"),
    Case("sad-nan", "sad", "created_utc = NaN", sad(['{"id": "w4", "link_id": "t3_g1", "parent_id": "t3_g1", "body": "x", "author": "y", "subreddit": "changemyview", "created_utc": NaN}']),
         "rejected", {"wrong_type": 1}, record="created_utc"),
    Case("sad-duplicate-id", "sad", "the same submission id twice", sad([_sub("g1", title="CMV: copy")]),
         "rejected", {"duplicate_id": 1}, record="g1"),
    Case("sad-confusable-id", "sad", "a submission id with a Cyrillic 'а' (looks like g1a)", sad([_com("g1\u0430", "g1", "t3_g1", "y")]),
         "rejected", {"bad_id": 1}, record="g1\u0430"),
    Case("sad-confusable-author", "sad", "a comment by 'оp' (Cyrillic о): kept, not the OP",
         sad([_com("c1", "g1", "t1_g1b", "\u043ep")]), "kept"),
    Case("sad-lone-surrogate", "sad", "a lone UTF-16 surrogate escape (a cut emoji)",
         sad(['{"id": "s9", "link_id": "t3_g1", "parent_id": "t3_g1", "body": "cut \\ud83d emoji ' + g.LONG + '", "author": "z", "subreddit": "changemyview", "created_utc": 1500000200}']),
         "kept", counters={"values_coerced": 1}),
    Case("sad-empty-file", "sad", "an empty dump beside a good one", sad_files(lambda d: (d / "empty.jsonl").write_bytes(b"")), "kept"),
    Case("sad-blank-lines", "sad", "blank and whitespace-only lines", sad(["", "   ", "\t"]), "kept"),
    Case("sad-giant-line", "sad", "one 48 MB line (a comment with a huge extra field)", _sad_giant_line, "kept"),
    Case("sad-utf16", "sad", "a dump saved as UTF-16 (with its BOM)", sad_files(_utf16), "error", error="UTF-16"),
    Case("sad-binary-junk", "sad", "an executable (ELF) named .jsonl", sad_files(_junk), "error", error="unknown format"),
    Case("sad-bz2", "sad", "a bzip2 dump", sad_files(_bz2), "error", error="unsupported compression 'bz2'"),
    Case("sad-truncated-zst", "sad", "a .zst cut in half", sad_files(_truncated_zst), "error", error="truncated"),
    Case("sad-zstd-bomb", "sad", "a 4 GB zstd bomb of zeros (~130 KB)", sad_files(_sad_zstd_bomb), "error", error="decompression bomb", bomb=True),
    Case("sad-gzip-bomb", "sad", "a 2 GB gzip bomb of zeros (~2 MB)", sad_files(_sad_gzip_bomb), "error", error="decompression bomb", bomb=True),
]


# =========================================================================== PolyRefuse

_SPLITS = [f"{lab}_{s}" for lab in ("harmful", "harmless") for s in ("train", "val", "test")]


def _good_rows(name: str) -> list[dict]:
    return [{"instruction": f"{name.replace('_', ' ')} prompt number {i}", "category": None} for i in range(3)]


def polyrefuse(edit: Callable[[dict[str, object]], None], *, raw: Callable[[Path], None] | None = None, de: object = None) -> Callable:
    """Six split files of three good rows each; ``edit`` changes the rows (or gives a file's text);
    ``raw(folder)`` writes bytes over files; ``de``: a harmful train German file (rows or bytes)."""

    def build(folder: Path, rng: random.Random) -> Built:
        files: dict[str, object] = {name: _good_rows(name) for name in _SPLITS}
        good = {r["instruction"] for rows in files.values() for r in rows}  # type: ignore[union-attr]
        edit(files)
        splits = folder / "splits"
        splits.mkdir(parents=True)
        for name, rows in files.items():
            data = rows if isinstance(rows, bytes) else json.dumps(rows, ensure_ascii=False).encode()
            (splits / f"{name}.json").write_bytes(data)
        if raw:
            raw(splits)
        args = ["build", "polyrefuse", "--sources", str(splits), "--set", "polyrefuse.sources.harmless_sizes=[3, 3, 3]"]
        if de is None:
            args += ["--languages", "en"]
        else:
            tr = folder / "translations"
            tr.mkdir()
            data = de if isinstance(de, bytes) else json.dumps(de, ensure_ascii=False).encode()
            (tr / "harmful_train_translated_de.json").write_bytes(data)
            args += ["--languages", "de,en", "--backend", "published", "--translations", str(tr)]
        return Built(args, good)

    return build


def _append(name: str, *rows: object) -> Callable:
    return lambda files: files[name].extend(rows)  # type: ignore[union-attr]


def _replace(name: str, data: bytes) -> Callable:
    def edit(files: dict) -> None:
        files[name] = data
    return edit


def _nothing(files: dict) -> None:
    pass


_DE = [{"instruction": f"Schädliche Aufforderung {i}", "category": None} for i in range(3)]
_GOOD_TRAIN = json.dumps(_good_rows("harmful_train")).encode()

POLYREFUSE_CASES = [
    Case("pr-bom", "polyrefuse", "a split file starting with a UTF-8 BOM", polyrefuse(_replace("harmful_train", b"\xef\xbb\xbf" + _GOOD_TRAIN)), "kept"),
    Case("pr-utf16", "polyrefuse", "a split file saved as UTF-16", polyrefuse(_replace("harmful_train", b"\xff\xfe" + _GOOD_TRAIN.decode().encode("utf-16-le"))),
         "error", error="harmful_train.json: UTF-16 text, not UTF-8"),
    Case("pr-latin1", "polyrefuse", "a split file in Latin-1", polyrefuse(_replace("harmful_val", json.dumps([{"instruction": "café"}], ensure_ascii=False).encode("latin-1"))),
         "error", error="not UTF-8"),
    Case("pr-deep-json", "polyrefuse", "a split file nested 100,000 deep", polyrefuse(_replace("harmless_val", g.deep_json().encode())),
         "error", error="nested"),
    Case("pr-not-json", "polyrefuse", "a split file cut mid-way (invalid JSON)", polyrefuse(_replace("harmful_test", _GOOD_TRAIN[:40])),
         "error", error="not valid JSON"),
    Case("pr-raw-nul", "polyrefuse", "a raw NUL byte inside a prompt string", polyrefuse(_replace("harmful_test", b'[{"instruction": "a\x00b", "category": null}]')),
         "error", error="not valid JSON"),
    Case("pr-object-not-list", "polyrefuse", "a split file that is an object, not a list", polyrefuse(_replace("harmless_test", b'{"instruction": "x"}')),
         "error", error="expected a JSON list"),
    Case("pr-wrong-schema", "polyrefuse", "rows with 'prompt' instead of 'instruction'", polyrefuse(_append("harmful_train", {"prompt": "Do a bad thing", "category": None})),
         "rejected", {"bad_record": 1}, record="Do a bad thing"),
    Case("pr-wrong-types", "polyrefuse", "instruction a number, category a list", polyrefuse(_append("harmful_train", {"instruction": 42}, {"instruction": "Steal a car", "category": ["x"]})),
         "rejected", {"bad_record": 2}, record="Steal a car"),
    Case("pr-empty-prompts", "polyrefuse", "empty and whitespace-only prompts (incl. U+3000)", polyrefuse(_append("harmful_train", {"instruction": ""}, {"instruction": " \u3000\t\n"})),
         "rejected", {"empty_prompt": 2}),
    Case("pr-duplicate", "polyrefuse", "the same prompt twice, once with extra whitespace", polyrefuse(_append("harmful_train", {"instruction": "  harmful train   prompt number 1 "})),
         "rejected", {"duplicate_prompt": 1}, record="harmful train"),
    Case("pr-confusable", "polyrefuse", "a prompt equal to a good one but with a Cyrillic 'а': kept as its own prompt",
         polyrefuse(_append("harmful_train", {"instruction": "h\u0430rmful train prompt number 1", "category": None})), "kept"),
    Case("pr-zero-width", "polyrefuse", "a prompt with a zero-width space and an escaped NUL: kept as its own prompt",
         polyrefuse(_append("harmful_train", {"instruction": "harmful train\u200b prompt\u0000 number 2", "category": None})), "kept"),
    Case("pr-nested-row", "polyrefuse", "a row whose category nests 200 objects deep", polyrefuse(_replace("harmful_train", (_GOOD_TRAIN[:-1].decode() + ', {"instruction": "deep one", "category": ' + g.deep_object(200) + "}]").encode())),
         "rejected", {"bad_record": 1}, record="deep one"),
    Case("pr-de-bom", "polyrefuse", "a published German file starting with a UTF-8 BOM", polyrefuse(_nothing, de=b"\xef\xbb\xbf" + json.dumps(_DE, ensure_ascii=False).encode()), "kept"),
    Case("pr-de-latin1", "polyrefuse", "a published German file in Latin-1", polyrefuse(_nothing, de=json.dumps(_DE, ensure_ascii=False).encode("latin-1")),
         "error", error="not UTF-8"),
    Case("pr-de-deep", "polyrefuse", "a published German file nested 100,000 deep", polyrefuse(_nothing, de=g.deep_json().encode()),
         "error", error="nested"),
]


# =========================================================================== facts

_FACTS = [
    {"lang": "en", "relation": "capital", "index": 1, "subject": "Paris", "object": "France"},
    {"lang": "en", "relation": "capital", "index": 2, "subject": "Rome", "object": "Italy"},
]
_GOOD_FACTS = {"en:1", "en:2"}
_DOC = "Paris is the capital of France and a large city."


def _docs(prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}{i}", "text": _DOC} for i in range(n)]


def facts(*, facts_rows: list | None = None, facts_bytes: bytes | None = None, facts_name: str = "facts.jsonl",
          bad_docs: list | None = None, bad_shard: Callable[[Path], object] | None = None,
          shard_name: str = "shard-1.jsonl", good_facts: set[str] = _GOOD_FACTS, extra: tuple[str, ...] = ()) -> Callable:
    """A facts table (good facts plus ``facts_rows``), a good shard of 5 documents and a second
    shard of 2 good documents around ``bad_docs`` (or a file written by ``bad_shard``)."""

    def build(folder: Path, rng: random.Random) -> Built:
        facts_file = folder / facts_name
        if facts_bytes is not None:
            facts_file.parent.mkdir(parents=True, exist_ok=True)
            facts_file.write_bytes(facts_bytes)
        else:
            g.write_lines(facts_file, [*_FACTS, *(facts_rows or [])])
        corpus = folder / "corpus"
        g.write_lines(corpus / "shard-0.jsonl", _docs("a", 5))
        n = 5
        if bad_shard is not None:
            n += bad_shard(corpus) or 0
        else:
            g.write_lines(corpus / shard_name, [_docs("b", 1)[0], *(bad_docs or []), _docs("c", 1)[0]])
            n += 2
        return Built(["build", "facts", "--facts", str(facts_file), "--corpus", str(corpus), *extra], good_facts, good_docs=n)

    return build


def _klar(folder_bytes: bytes) -> Callable:
    def build(folder: Path, rng: random.Random) -> Built:
        klar = folder / "klar" / "en"
        klar.mkdir(parents=True)
        (klar / "capital.json").write_bytes(folder_bytes)
        corpus = folder / "corpus"
        g.write_lines(corpus / "shard-0.jsonl", _docs("a", 5))
        return Built(["build", "facts", "--facts", str(folder / "klar"), "--corpus", str(corpus)], {"en:1"}, good_docs=5)
    return build


_KLAR = {"relation": "capital", "language": "en", "prompt_templates": ["[X] is the capital of [Y]."],
         "samples": [{"subject": "Paris", "object": "France", "index": 1}]}


def _facts_zstd_bomb(corpus: Path) -> None:
    g.zstd_bomb(corpus / "bomb.jsonl.zst", 4 * g.GB)


def _facts_gzip_bomb(corpus: Path) -> None:
    g.gzip_bomb(corpus / "bomb.jsonl.gz", 2 * g.GB)


def _facts_giant(corpus: Path) -> int:
    g.giant_line(corpus / "giant.jsonl", [json.dumps(d) for d in _docs("b", 1)], '{"id": "huge", "text": "' + _DOC + " ", 40 << 20, [json.dumps(d) for d in _docs("c", 1)])
    return 3


def _facts_truncated(corpus: Path) -> None:
    g.truncate(g.write_lines(corpus / "cut.jsonl.gz", _docs("t", 2000), compression="gz"), 0.5)


def _facts_latin1_text(corpus: Path) -> int:
    g.write_lines(corpus / "latin.txt", [_DOC.encode(), "Pâris est en France".encode("latin-1"), _DOC.encode()])
    return 2


def _facts_parquet_wrong_type(corpus: Path) -> None:
    import polars as pl

    pl.DataFrame({"id": ["p1"], "text": [123]}).write_parquet(corpus / "wrong.parquet")


FACTS_CASES = [
    Case("facts-table-bom", "facts", "a facts table with a UTF-8 BOM", facts(facts_bytes=b"\xef\xbb\xbf" + b"".join(json.dumps(r).encode() + b"\n" for r in _FACTS)), "kept"),
    Case("facts-csv-bom", "facts", "a facts CSV with a UTF-8 BOM (Excel)", facts(facts_name="facts.csv", facts_bytes=b"\xef\xbb\xbflang,relation,index,subject,object\nen,capital,1,Paris,France\nen,capital,2,Rome,Italy\n"), "kept"),
    Case("facts-duplicate-index", "facts", "the same fact index twice", facts(facts_rows=[{"lang": "en", "relation": "capital", "index": 1, "subject": "Lyon", "object": "France"}]),
         "rejected", {"duplicate_index": 1}, record="Lyon"),
    Case("facts-wrong-schema", "facts", "a fact without subject, one with index as text", facts(facts_rows=[{"lang": "en", "relation": "capital", "index": 3, "object": "Spain"}, {"lang": "en", "relation": "capital", "index": "four", "subject": "Bern", "object": "Switzerland"}]),
         "rejected", {"bad_record": 2}, record="Spain"),
    Case("facts-empty-phrase", "facts", "a fact with a blank subject", facts(facts_rows=[{"lang": "en", "relation": "capital", "index": 5, "subject": " \u00a0", "object": "Chile"}]),
         "rejected", {"empty_phrase": 1}, record="Chile"),
    Case("facts-confusable-subject", "facts", "a fact 'Раris' (Cyrillic Р, а): kept, its own fact, matches no Paris document",
         facts(facts_rows=[{"lang": "en", "relation": "capital", "index": 9, "subject": "\u0420\u0430ris", "object": "France"}], good_facts=_GOOD_FACTS | {"en:9"}), "kept"),
    Case("facts-table-deep", "facts", "a facts line nested 100,000 deep", facts(facts_rows=[g.deep_json()]), "rejected", {"bad_record": 1}),
    Case("facts-klar-bom", "facts", "a KLAR relation file with a BOM", _klar(b"\xef\xbb\xbf" + json.dumps(_KLAR).encode()), "kept"),
    Case("facts-klar-deep", "facts", "a KLAR relation file nested 100,000 deep", _klar(g.deep_object().encode()), "error", error="nested"),
    Case("facts-klar-latin1", "facts", "a KLAR relation file in Latin-1", _klar(json.dumps({**_KLAR, "samples": [{"subject": "Pâris", "object": "France", "index": 1}]}, ensure_ascii=False).encode("latin-1")),
         "error", error="not UTF-8"),
    Case("facts-corpus-bom", "facts", "a corpus shard with a BOM", facts(bad_shard=lambda c: g.write_lines(c / "bom.jsonl", _docs("b", 2), bom=True) and 2), "kept"),
    Case("facts-corpus-latin1", "facts", "a corpus line in Latin-1", facts(bad_docs=['{"id": "l1", "text": "P\xe2ris"}'.encode("latin-1")]),
         "rejected", {"malformed_json": 1}, record="l1"),
    Case("facts-corpus-nul", "facts", "a corpus line of NUL bytes", facts(bad_docs=[b"\x00" * 100]), "rejected", {"malformed_json": 1}),
    Case("facts-corpus-deep", "facts", "a corpus line of objects nested 100,000 deep (parsed: no text)", facts(bad_docs=[g.deep_object()]), "rejected", {"no_text": 1}),
    Case("facts-corpus-deep-array", "facts", "a corpus line of arrays nested 100,000 deep", facts(bad_docs=[g.deep_json()]), "rejected", {"malformed_json": 1}, record="recursion"),
    Case("facts-corpus-wrong-schema", "facts", "documents with 'content' instead of 'text', text as a list", facts(bad_docs=[{"id": "w1", "content": _DOC}, {"id": "w2", "text": [_DOC]}]),
         "rejected", {"no_text": 2}, record="w1"),
    Case("facts-corpus-text-latin1", "facts", "a plain-text shard with a Latin-1 line", facts(bad_shard=_facts_latin1_text),
         "rejected", {"bad_encoding": 1}, counters={}),
    Case("facts-corpus-truncated", "facts", "a gzip shard cut in half", facts(bad_shard=_facts_truncated), "rejected", {"broken_compression": 1}, record="cut.jsonl.gz"),
    Case("facts-corpus-parquet-type", "facts", "a parquet shard whose text column holds integers", facts(bad_shard=_facts_parquet_wrong_type), "error", error="text column"),
    Case("facts-corpus-giant-line", "facts", "one 40 MB document", facts(bad_shard=_facts_giant), "kept"),
    Case("facts-corpus-zstd-bomb", "facts", "a 4 GB zstd bomb of zeros (~130 KB): the shard quarantined whole", facts(bad_shard=_facts_zstd_bomb),
         "rejected", {"decompression_bomb": 1}, record="bomb.jsonl.zst", bomb=True),
    Case("facts-corpus-gzip-bomb", "facts", "a 2 GB gzip bomb of zeros (~2 MB): the shard quarantined whole", facts(bad_shard=_facts_gzip_bomb),
         "rejected", {"decompression_bomb": 1}, record="bomb.jsonl.gz", bomb=True),
]


# =========================================================================== reLAIONet

_GOOD_IMAGES = (("s01.jpg", "Golden goldfish swimming in a freshwater pond"), ("s07.jpg", None), ("s11.png", None))


def _good_images(folder: Path) -> list[dict]:
    captions = {json.loads(l)["file"]: json.loads(l) for l in (g.RELAIONET_SAMPLE / "captions.jsonl").read_text().splitlines()}
    rows = []
    for name, _ in _GOOD_IMAGES:
        shutil.copy(g.RELAIONET_SAMPLE / name, folder / name)
        rows.append({"file": name, "caption": captions[name]["caption"], "sample_id": captions[name]["sample_id"], "nsfw": "UNLIKELY"})
    return rows


def relaionet(bad_rows: list | None = None, bad_files: dict[str, bytes] | None = None, *, bom: bool = False,
              raw_lines: list[bytes] | None = None, good: set[str] | None = None) -> Callable:
    """An image folder with three good sample images and ``captions.jsonl``; bad rows and files beside."""

    def build(folder: Path, rng: random.Random) -> Built:
        images = folder / "images"
        images.mkdir(parents=True)
        rows = _good_images(images)
        for name, data in (bad_files or {}).items():
            (images / name).write_bytes(data(rng) if callable(data) else data)
        g.write_lines(images / "captions.jsonl", [*rows[:1], *(bad_rows or []), *(raw_lines or []), *rows[1:]], bom=bom)
        return Built(["build", "relaionet", "--input", str(images), *NO_MODEL], good or {r["sample_id"] for r in rows})

    return build


def _row(name: str, sid: str, caption: str = "A pet goldfish in a glass bowl on a table") -> dict:
    return {"file": name, "caption": caption, "sample_id": sid, "nsfw": "UNLIKELY"}


def _tar_case(break_it: bool) -> Callable:
    def build(folder: Path, rng: random.Random) -> Built:
        shards = folder / "shards"
        good = {}
        for name, _ in _GOOD_IMAGES:
            key = name.split(".")[0]
            good[f"{key}.{name.split('.')[1]}"] = (g.RELAIONET_SAMPLE / name).read_bytes()
        captions = {json.loads(l)["file"]: json.loads(l) for l in (g.RELAIONET_SAMPLE / "captions.jsonl").read_text().splitlines()}
        members = {}
        for name, data in good.items():
            key = name.split(".")[0]
            members[name] = data
            members[f"{key}.txt"] = captions[name]["caption"].encode()
            members[f"{key}.json"] = json.dumps({"key": key, "status": "success", "NSFW": "UNLIKELY"}).encode()
        g.write_tar(shards / "00000.tar", members)
        bad = {"b1.png": g.png_header_bomb(), "b1.txt": b"A goldfish", "b1.json": json.dumps({"key": "b1", "status": "success", "NSFW": "UNLIKELY"}).encode()}
        g.write_tar(shards / "00001.tar", bad)
        if break_it:
            g.truncate(shards / "00001.tar", 1100)  # inside the second member's header
        return Built(["build", "relaionet", "--input", str(shards), *NO_MODEL], {k.split(".")[0] for k in good})
    return build


RELAIONET_CASES = [
    Case("rl-captions-bom", "relaionet", "captions.jsonl starting with a UTF-8 BOM", relaionet(bom=True), "kept"),
    Case("rl-png-header-bomb", "relaionet", "a PNG whose header claims 50,000 x 50,000 pixels", relaionet([_row("bomb.png", "bomb1")], {"bomb.png": g.png_header_bomb()}),
         "rejected", {"too_large": 1}, record="bomb1", bomb=True),
    Case("rl-png-pixel-bomb", "relaionet", "a complete 10,000 x 10,000 PNG in ~100 KB (100 Mpx)", relaionet([_row("bomb.png", "bomb2")], {"bomb.png": g.png_pixel_bomb()}),
         "rejected", {"too_large": 1}, record="bomb2", bomb=True),
    Case("rl-truncated-jpeg", "relaionet", "a JPEG cut in half", relaionet([_row("cut.jpg", "cut1")], {"cut.jpg": (g.RELAIONET_SAMPLE / "s03.jpg").read_bytes()[:3000]}),
         "rejected", {"truncated": 1}, record="cut1"),
    Case("rl-not-an-image", "relaionet", "a text file named .jpg", relaionet([_row("fake.jpg", "fake1")], {"fake.jpg": b"<html>not an image</html>"}),
         "rejected", {"not_an_image": 1}, record="fake1"),
    Case("rl-empty-image", "relaionet", "an empty .png", relaionet([_row("empty.png", "empty1")], {"empty.png": b""}), "rejected", {"empty": 1}, record="empty1"),
    Case("rl-too-small", "relaionet", "a 10 x 10 image", relaionet([_row("tiny.png", "tiny1")], {"tiny.png": g.tiny_png()}), "rejected", {"too_small": 1}, record="tiny1"),
    Case("rl-lying-extension", "relaionet", "a PNG named .jpg: kept", relaionet([_row("png.jpg", "png1")], {"png.jpg": g.noise_png}, good={"s01", "s07", "s11", "png1"}), "kept"),
    Case("rl-duplicate-id", "relaionet", "two rows with the same sample_id", relaionet([_row("dup.png", "s01")], {"dup.png": g.noise_png}),
         "rejected", {"duplicate_sample_id": 1}, record="s01"),
    Case("rl-confusable-id", "relaionet", "sample_id 's0１' (fullwidth digit) beside s01: kept, its own sample",
         relaionet([_row("conf.png", "s0\uff11")], {"conf.png": g.noise_png}, good={"s01", "s07", "s11", "s0\uff11"}), "kept"),
    Case("rl-deep-row", "relaionet", "a caption row nested 100,000 deep", relaionet(raw_lines=[g.deep_object().encode()]), "rejected", {"bad_metadata": 1}),
    Case("rl-latin1-row", "relaionet", "a caption row in Latin-1: the caption is kept with U+FFFD",
         relaionet(raw_lines=[json.dumps(_row("lat.png", "lat1", "A goldfish in a café bowl"), ensure_ascii=False).encode("latin-1")], bad_files={"lat.png": g.noise_png},
                   good={"s01", "s07", "s11", "lat1"}), "kept"),
    Case("rl-wrong-schema", "relaionet", "a caption row without 'file'", relaionet([{"image": "x.png", "caption": "a goldfish"}]), "rejected", {"bad_metadata": 1}),
    Case("rl-missing-image", "relaionet", "a caption row whose image is absent", relaionet([_row("gone.png", "gone1")]), "rejected", {"missing_image": 1}, record="gone1"),
    Case("rl-stray-file", "relaionet", "a stray .pdf in the image folder", relaionet(bad_files={"notes.pdf": b"%PDF-1.4"}), "rejected", {"unknown_file": 1}, record="notes.pdf"),
    Case("rl-tar-bomb", "relaionet", "an img2dataset shard holding a header-bomb PNG", _tar_case(False), "rejected", {"too_large": 1}, record="b1", bomb=True),
    Case("rl-tar-truncated", "relaionet", "an img2dataset shard cut inside a member header", _tar_case(True), "rejected", {"broken_archive": 1}, record="00001.tar"),
]


CASES: list[Case] = [*SAD_CASES, *POLYREFUSE_CASES, *FACTS_CASES, *RELAIONET_CASES]
assert len({c.id for c in CASES}) == len(CASES)
