"""The facts to count: a KLAR folder or a plain facts table -> one typed frame, bad rows quarantined.

Inputs (:func:`read_facts` tells them apart: a folder is KLAR, a file is a table):

* **KLAR**: ``<root>/<lang>/<relation>.json``, each ``{relation, language, prompt_templates,
  samples: [{subject, object, index}]}``. The folder and file names give the language and the
  relation; a file whose ``language`` or ``relation`` field says otherwise is an
  :class:`InputError` (which one is right cannot be guessed). A sample may also carry
  ``subject_aliases`` / ``object_aliases``. ``prompt_templates`` become the ``templates`` frame
  (lang, relation, template; file order). Files other than ``*.json`` are ignored and counted.
* **A table**: ``.jsonl`` (optionally gzip/zstd compressed: ``.jsonl.gz``, ``.jsonl.zst``),
  ``.csv`` or ``.parquet`` with columns ``lang, relation, index, subject, object`` and optional
  ``subject_aliases``, ``object_aliases`` (lists of alternative surface forms; in CSV a JSON array
  in the cell, e.g. ``["NYC", "New York City"]``, or an empty cell). Other columns are ignored.
  In CSV, ``index`` is a cell of digits; in JSON and parquet it must be an integer.

Output :class:`FactsRead`: ``facts`` (:data:`schemas.facts.FACTS`: ``fact_id`` 0..n-1 in
(lang, relation, index) order, forms stripped of surrounding whitespace, aliases never null),
``templates``, ``rejects`` (:data:`schemas.rejects.REJECTS`) and ``counters``.

Bad input. A record that cannot be used goes to ``rejects`` with ``source_file`` and ``line``
(KLAR and JSONL: the line in the file where the record starts; CSV: the physical line where the
row starts, the header being line 1; parquet: the row number, 1-based):

* ``bad_record``: not a JSON object (or a JSONL line that is not JSON), a missing field, an empty
  or non-string ``lang``/``relation``, an ``index`` that is not an integer, an alias list that is
  not a list of strings (or, in CSV, not a JSON array);
* ``empty_phrase``: ``subject`` or ``object`` null, not a string, empty or whitespace only;
* ``duplicate_index``: the same (lang, index) again (within a language an index is one fact); the
  first in reading order (languages, then relations, sorted by name; records in file order) is
  kept, the detail of each later one names the file and line of the first.

Not rejects, counted in ``counters`` instead: alias entries that are empty, equal to the main
form or repeated are dropped (``alias_empty``, ``alias_same_as_main``, ``alias_duplicate``);
``relation_mismatch`` is the number of indices filed under different relations in different
languages. Those facts are *kept*: the surface forms are fine and each language's counts stay
right, only the cross-language pairing of that index is doubtful, which is a property of the
whole set. :func:`check_parallel` lists them (and the indices missing per language) for the
validation step, which decides whether the set may be released.

A file that cannot be read at all (no such path, an unknown extension, bad JSON in a KLAR file
or an empty CSV, a table without a required column, an unreadable parquet file, a truncated
compressed JSONL) is an :class:`InputError` naming the file and the fix.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from pipelines.core.errors import InputError, TruncatedInputError
from pipelines.core.readers import TruncatedTail, iter_line_chunks, load_json_file
from pipelines.core.rejects import rejects_frame
from schemas.facts import FACTS

REQUIRED = ("lang", "relation", "index", "subject", "object")
PHRASES = ("subject", "object")
ALIASES = ("subject_aliases", "object_aliases")
TABLE_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".csv", ".parquet")
TEMPLATES_SCHEMA = pl.Schema({"lang": pl.String(), "relation": pl.String(), "template": pl.String()})
_INT64 = (-(2**63), 2**63 - 1)
_CSV_INT = re.compile(r"[+-]?\d+")
_WS = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class FactsRead:
    """``facts`` conforms to FACTS; ``templates`` to :data:`TEMPLATES_SCHEMA` (empty for a table);
    ``rejects`` to REJECTS; ``counters``: ``rows_in``, ``facts``, ``files_ignored``, the alias
    counters and ``relation_mismatch`` (see the module docstring)."""

    facts: pl.DataFrame
    templates: pl.DataFrame
    rejects: pl.DataFrame
    counters: dict[str, int]

    @property
    def dropped(self) -> dict[str, int]:
        """Rejected records per reason."""
        return dict(sorted(self.rejects.group_by("drop_reason").len().iter_rows()))


# --------------------------------------------------------------------------- entry points


def read_facts(path: Path | str) -> FactsRead:
    """Read a KLAR folder or a facts table (see the module docstring for the contract)."""
    path = Path(path)
    reader = _Reader()
    if path.is_dir():
        reader.read_klar(path)
    elif path.is_file():
        reader.read_table(path)
    else:
        raise InputError(path, "no such facts folder or file", "Give a KLAR folder (<lang>/<relation>.json) or a facts table (.jsonl, .csv, .parquet)")
    return reader.result()


def check_parallel(facts: pl.DataFrame) -> dict[str, Any]:
    """Whether the languages hold the same facts: ``languages``; ``facts_per_language``;
    ``indices`` (how many distinct indices in all); ``missing`` (language -> sorted indices some
    other language has and it lacks; only languages that lack some); ``relation_mismatch`` (index
    -> {language: relation} for indices filed under different relations); ``identical_indices``
    and ``parallel`` (identical indices and no relation mismatch)."""
    per_lang = {
        lang: set(indices)
        for lang, indices in facts.group_by("lang").agg(pl.col("index")).sort("lang").iter_rows()
    }
    union: set[int] = set().union(*per_lang.values()) if per_lang else set()
    missing = {lang: sorted(union - have) for lang, have in per_lang.items() if union - have}
    mismatched = _relation_mismatches(facts)
    mismatch: dict[int, dict[str, str]] = {}
    for index, lang, relation in (
        facts.join(mismatched, on="index").sort("index", "lang").select("index", "lang", "relation").iter_rows()
    ):
        mismatch.setdefault(index, {})[lang] = relation
    return {
        "languages": list(per_lang),
        "facts_per_language": {lang: len(have) for lang, have in per_lang.items()},
        "indices": len(union),
        "missing": missing,
        "relation_mismatch": mismatch,
        "identical_indices": not missing,
        "parallel": not missing and not mismatch,
    }


def _relation_mismatches(facts: pl.DataFrame) -> pl.DataFrame:
    """The indices filed under more than one relation (one column, ``index``)."""
    return facts.group_by("index").agg(pl.col("relation").n_unique().alias("n")).filter(pl.col("n") > 1).select("index")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _BadLine:
    """A record that could not even be parsed into a value (kept for its reject)."""

    detail: str
    raw: str


class _Reader:
    """Collects facts, templates, rejects and counters over the records of one input."""

    def __init__(self) -> None:
        self.facts: list[dict[str, Any]] = []
        self.templates: list[tuple[str, str, str]] = []
        self.rejects: list[dict[str, Any]] = []
        self.first_seen: dict[tuple[str, int], str] = {}
        self.counters = {"rows_in": 0, "files_ignored": 0, "alias_empty": 0, "alias_same_as_main": 0, "alias_duplicate": 0}

    # -- KLAR

    def read_klar(self, root: Path) -> None:
        lang_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.counters["files_ignored"] += sum(1 for p in root.iterdir() if p.is_file())
        if not lang_dirs:
            raise InputError(root, "no language folders here", "Give a KLAR folder laid out as <lang>/<relation>.json")
        for lang_dir in lang_dirs:
            files = sorted(p for p in lang_dir.iterdir() if p.is_file() and p.suffix == ".json")
            self.counters["files_ignored"] += sum(1 for p in lang_dir.iterdir() if p not in files)
            if not files:
                raise InputError(lang_dir, "a language folder without <relation>.json files", "Remove the folder or add its relation files")
            for file in files:
                self._read_klar_file(file, lang_dir.name, file.stem)

    def _read_klar_file(self, file: Path, lang: str, relation: str) -> None:
        data = load_json_file(file)
        src = str(file)
        if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
            raise InputError(file, 'expected a JSON object with a "samples" list', "Give the KLAR file as published: {relation, language, prompt_templates, samples}")
        for key, expected in (("language", lang), ("relation", relation)):
            declared = data.get(key)
            if declared is not None and declared != expected:
                raise InputError(
                    file, f"the file says {key} {declared!r} but its path says {expected!r}",
                    "Rename the file or folder, or fix the field (<lang>/<relation>.json)",
                )
        templates = data.get("prompt_templates", [])
        if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
            raise InputError(file, '"prompt_templates" is not a list of strings', "Give the templates as a JSON list of strings")
        self.templates.extend((lang, relation, t) for t in templates)
        samples = data["samples"]
        lines = _item_lines(file.read_text(encoding="utf-8-sig"), "samples")
        if len(lines) != len(samples):  # cannot happen for JSON that json.load accepted; stay safe
            lines = [None] * len(samples)
        for sample, line in zip(samples, lines):
            self._add(sample, src, line, {"lang": lang, "relation": relation})

    # -- tables

    def read_table(self, file: Path) -> None:
        name = file.name.lower()
        if name.endswith(".csv"):
            rows = _csv_rows(file)
        elif name.endswith(".parquet"):
            rows = _parquet_rows(file)
        elif name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst")):
            rows = _jsonl_rows(file)
        else:
            raise InputError(file, "unknown facts file type", f"Give a KLAR folder or a table ending in {', '.join(TABLE_SUFFIXES)}")
        src = str(file)
        for line, record in rows:
            self._add(record, src, line, {})

    # -- one record

    def _add(self, record: Any, src: str, line: int | None, given: dict[str, str]) -> None:
        self.counters["rows_in"] += 1
        fact, reason, detail = self._check(record, given)
        if fact is None:
            raw = record.raw if isinstance(record, _BadLine) else json.dumps(record, ensure_ascii=False, default=str)
            self.rejects.append(
                {"record_id": _record_id(record, given), "drop_reason": reason, "detail": detail, "source_file": src, "line": line, "raw": raw}
            )
            return
        key = (fact["lang"], fact["index"])
        where = f"{src}:{line}" if line is not None else src
        if key in self.first_seen:
            self.rejects.append({
                "record_id": _record_id(record, given),
                "drop_reason": "duplicate_index",
                "detail": f"({fact['lang']}, index {fact['index']}) was already read at {self.first_seen[key]}; the first is kept",
                "source_file": src, "line": line, "raw": json.dumps(record, ensure_ascii=False, default=str),
            })
            return
        self.first_seen[key] = where
        self.facts.append(fact)

    def _check(self, record: Any, given: dict[str, str]) -> tuple[dict[str, Any] | None, str, str]:
        if isinstance(record, _BadLine):
            return None, "bad_record", record.detail
        if not isinstance(record, dict):
            return None, "bad_record", f"expected a JSON object, got {_type_name(record)}"
        row = {**record, **given}
        absent = [f for f in REQUIRED if f not in row]
        if absent:
            return None, "bad_record", f"missing field(s) {', '.join(absent)}"
        for f in ("lang", "relation"):
            if not isinstance(row[f], str) or not row[f].strip():
                return None, "bad_record", f"{f} must be a non-empty string, got {_show(row[f])}"
        index = row["index"]
        if isinstance(index, bool) or not isinstance(index, int) or not _INT64[0] <= index <= _INT64[1]:
            return None, "bad_record", f"index must be an integer, got {_show(index)}"
        fact: dict[str, Any] = {"lang": row["lang"].strip(), "relation": row["relation"].strip(), "index": index}
        for f in PHRASES:
            value = row[f]
            if value is None:
                return None, "empty_phrase", f"{f} is null"
            if not isinstance(value, str):
                return None, "empty_phrase", f"{f} is not a string: {_show(value)}"
            if not value.strip():
                return None, "empty_phrase", f"{f} is {'empty' if not value else 'whitespace only'}"
            fact[f] = value.strip()
        for f, main in zip(ALIASES, PHRASES):
            aliases = row.get(f)
            if aliases is None:
                aliases = []
            if not isinstance(aliases, list) or not all(a is None or isinstance(a, str) for a in aliases):
                return None, "bad_record", f"{f} must be a JSON array of strings (or empty), got {_show(aliases)}"
            fact[f] = self._clean_aliases(aliases, fact[main])
        return fact, "", ""

    def _clean_aliases(self, aliases: list[str | None], main: str) -> list[str]:
        kept: list[str] = []
        for alias in ((a or "").strip() for a in aliases):
            if not alias:
                self.counters["alias_empty"] += 1
            elif alias == main:
                self.counters["alias_same_as_main"] += 1
            elif alias in kept:
                self.counters["alias_duplicate"] += 1
            else:
                kept.append(alias)
        return kept

    # -- result

    def result(self) -> FactsRead:
        body = pl.DataFrame(self.facts, schema={n: t for n, t in FACTS.polars_schema().items() if n != "fact_id"})
        facts = FACTS.conform(body.sort("lang", "relation", "index").with_row_index("fact_id"))
        templates = pl.DataFrame(self.templates, schema=TEMPLATES_SCHEMA, orient="row")
        counters = {**self.counters, "facts": facts.height, "relation_mismatch": _relation_mismatches(facts).height}
        return FactsRead(facts, templates, rejects_frame(self.rejects), counters)


def _record_id(record: Any, given: dict[str, str]) -> str | None:
    row = {**record, **given} if isinstance(record, dict) else {}
    if all(k in row for k in ("lang", "relation", "index")):
        return f"{row['lang']}/{row['relation']}/{row['index']}"
    return None


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _show(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return f"{_type_name(value)} {text if len(text) <= 40 else text[:37] + '...'}"


def _item_lines(text: str, key: str) -> list[int]:
    """The 1-based line on which each element of the top-level array ``key`` starts, in a JSON
    object text that ``json.load`` accepted (for the last ``key`` if it repeats, as json does)."""
    decoder = json.JSONDecoder()

    def skip(pos: int, sep: str = "") -> int:
        pos = _WS.match(text, pos).end()
        if sep and text.startswith(sep, pos):
            pos = _WS.match(text, pos + 1).end()
        return pos

    pos = skip(0)
    if not text.startswith("{", pos):
        return []
    found: list[int] = []
    line, counted_to = 1, 0
    pos = skip(pos + 1)
    while not text.startswith("}", pos):
        name, pos = decoder.raw_decode(text, pos)
        pos = skip(pos, ":")
        if name == key and text.startswith("[", pos):
            found = []
            pos = skip(pos + 1)
            while not text.startswith("]", pos):
                line += text.count("\n", counted_to, pos)
                counted_to = pos
                found.append(line)
                _, pos = decoder.raw_decode(text, pos)
                pos = skip(pos, ",")
            pos += 1
        else:
            _, pos = decoder.raw_decode(text, pos)
        pos = skip(pos, ",")
    return found


# --------------------------------------------------------------------------- table formats


def _jsonl_rows(file: Path) -> Iterator[tuple[int, Any]]:
    for chunk in iter_line_chunks(file):
        if isinstance(chunk, TruncatedTail):
            raise TruncatedInputError(file, chunk.line - 1)
        for offset, raw in enumerate(chunk.data.split(b"\n")[: chunk.n_lines]):
            if not raw.strip():
                continue
            try:
                yield chunk.first_line + offset, json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                yield chunk.first_line + offset, _BadLine(f"not valid JSON: {exc}", raw.decode("utf-8", errors="replace"))


def _csv_rows(file: Path) -> Iterator[tuple[int, Any]]:
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise InputError(file, f"the header lacks column(s) {', '.join(missing)} (it has {header})", f"Give a header row with {', '.join(REQUIRED)}")
            end = reader.line_num
            for cells in reader:
                start, end = end + 1, reader.line_num
                if not cells:
                    continue
                if len(cells) != len(header):
                    yield start, _BadLine(f"{len(cells)} cells where the header has {len(header)}", ",".join(cells))
                    continue
                yield start, _csv_record(dict(zip(header, cells)))
    except UnicodeDecodeError as exc:
        raise InputError(file, f"not UTF-8 text ({exc.reason})", "Re-encode the file as UTF-8") from exc
    except csv.Error as exc:
        raise InputError(file, f"not readable as CSV ({exc})", "Fix the quoting of the file") from exc


def _csv_record(row: dict[str, str]) -> dict[str, Any]:
    """CSV cells are text: an index of digits becomes an integer, an alias cell a JSON value."""
    record: dict[str, Any] = dict(row)
    if _CSV_INT.fullmatch(row["index"].strip()):
        record["index"] = int(row["index"])
    for f in ALIASES:
        cell = row.get(f)
        if cell is None:
            continue
        if not cell.strip():
            record[f] = None
            continue
        try:
            record[f] = json.loads(cell)
        except json.JSONDecodeError:
            record[f] = cell  # rejected by the check: not a JSON array
    return record


def _parquet_rows(file: Path) -> Iterator[tuple[int, Any]]:
    try:
        frame = pl.read_parquet(file)
    except Exception as exc:  # polars and pyarrow raise several kinds for a broken file
        raise InputError(file, f"not a readable parquet file ({exc})", "Re-write or re-copy the file") from exc
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(file, f"lacks column(s) {', '.join(missing)} (it has {frame.columns})", f"Give columns {', '.join(REQUIRED)}")
    for row_no, row in enumerate(frame.select([c for c in (*REQUIRED, *ALIASES) if c in frame.columns]).iter_rows(named=True), 1):
        yield row_no, row
