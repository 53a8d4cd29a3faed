"""English PolyRefuse prompts: the published splits traced to their benchmarks, or a rebuild.

PolyRefuse translates the English splits of the refusal-direction literature (Arditi et al.
2024, ``dataset/splits`` of andyrdt/refusal_direction) unchanged. Two ways in, one result:

* :func:`read_splits` reads the six split files ``{harmful,harmless}_{train,val,test}.json``
  (JSON lists of ``{instruction, category}``; the files say ``val``, our split is
  ``validation``) and traces every row to the benchmark it came from.
* :func:`rebuild_splits` rebuilds them from the raw benchmark files with the literature's rules,
  seeded.

Facts about the published files that shaped the rules here:

* harmful train (260) = AdvBench 117 + MaliciousInstruct 88 + TDC2023 55: at most 128 per source
  were sampled *unseeded* (so the AdvBench part cannot be reproduced), then every prompt also in
  validation or test was removed (68); harmful validation (39) = the 41 standard HarmBench val
  behaviours minus the 2 also in test; harmful test (572) = JailbreakBench 100 + HarmBench test
  159 + StrongREJECT 313, concatenated. HarmBench contextual and copyright behaviours are left
  out (the rule keeps rows whose FunctionalCategory has no "copyright" and whose Tags have no
  "context", which on these files is exactly FunctionalCategory == "standard").
* harmful test holds 10 repeated prompts: JailbreakBench behaviours that HarmBench test or
  StrongREJECT also list, each under another category. Every published translation has both
  rows, so both are kept: the repeat is a prompt of its own whose id also hashes its category
  (:func:`prompt_id`), and the 572 rows stay aligned with the translations.
* harmless = Alpaca instructions without input (31,323), shuffled with ``random.seed(42)`` and cut
  60/20/20 into 18,793 / 6,264 / 6,266 rows; :func:`rebuild_splits` reproduces those files
  exactly. PolyRefuse translated random subsets of 200 / 200 / 500 of them, in sample order (its
  ``harmless_*_sampled.json``). They are not the first rows, not in file order, and not
  ``random.Random(s).sample`` for any seed s < 2,000,000 (nor numpy for s < 5,000): we could not
  re-draw the published subsets from the split files, so the default here is our own documented
  draw (:data:`HARMLESS_SEED`), which shares 34 of its 500 test prompts with the published test
  subset (chance level: 500 / 6,266 of 500 is about 40). With published translations the
  published subsets replace it (:mod:`pipelines.polyrefuse.published`): the test subset from the
  published test files, which carry their English, and the train/validation subsets from
  ``harmless_subsets.json``, their rows in the split files.

Rows that cannot be used go to ``rejects`` (layout of :data:`schemas.rejects.REJECTS`) with a
reason: ``bad_record`` (not an object with a string ``instruction``, or a category that is not a
string or null), ``empty_prompt`` (empty or whitespace only), ``duplicate_prompt`` (the same
normalised text as a row kept before, within one label; see the functions for which copy is
kept), and in a rebuild ``not_standard_behaviour`` (HarmBench contextual/copyright). ``line`` is
the 1-based row number (row index + 1) in ``source_file``. Rows left out by size sampling are not
rejects: they are not bad, only not drawn.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from pipelines.core.errors import InputError
from pipelines.core.readers import load_json_file
from pipelines.core.text import collapse_whitespace
from schemas.polyrefuse import LABEL, PROMPTS, SPLITS
from schemas.rejects import REJECTS

SPLIT_FILE_STEMS: dict[str, str] = {"train": "train", "validation": "val", "test": "test"}
# Precedence when one prompt is in two splits of a label: evaluation splits keep it (the
# literature removed train prompts found in validation/test, and validation ones found in test).
PRECEDENCE: tuple[str, ...] = ("test", "validation", "train")
UNKNOWN_SOURCE = "unknown"

HARMLESS_SIZES: tuple[int, int, int] = (200, 200, 500)  # train, validation, test (PolyRefuse)
HARMLESS_SEED = 42
ALPACA_SPLIT_SEED = 42  # random.seed(42); random.shuffle(alpaca) in the literature
ALPACA_SPLIT_FRACTIONS: tuple[float, float] = (0.6, 0.2)  # train, validation; test takes the rest
MAX_PER_SOURCE = 128
RAW_LIMIT = 10_000  # characters of a rejected record kept in ``raw``

# Raw file key -> (benchmark name, file names under raw_dir). HarmBench has two files.
RAW_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "advbench": ("advbench", ("advbench.csv",)),
    "malicious_instruct": ("malicious_instruct", ("malicious_instruct.txt",)),
    "tdc2023": ("tdc2023", ("tdc2023_dev_behaviors.json", "tdc2023_test_behaviors.json")),
    "harmbench_val": ("harmbench", ("harmbench_val.csv",)),
    "harmbench_test": ("harmbench", ("harmbench_test.csv",)),
    "jailbreakbench": ("jailbreakbench", ("jailbreakbench.csv",)),
    "strongreject": ("strongreject", ("strongreject.csv",)),
}
# CSV layouts: (instruction column, category column or None).
_CSV_COLUMNS: dict[str, tuple[str, str | None]] = {
    "advbench": ("goal", None),
    "harmbench_val": ("Behavior", "SemanticCategory"),
    "harmbench_test": ("Behavior", "SemanticCategory"),
    "jailbreakbench": ("Goal", "Category"),
    "strongreject": ("forbidden_prompt", "category"),
}
# Which raw files built which split (the literature's order within a split).
SPLIT_SOURCES: dict[tuple[str, str], tuple[str, ...]] = {
    ("train", "harmful"): ("advbench", "malicious_instruct", "tdc2023"),
    ("validation", "harmful"): ("harmbench_val",),
    ("test", "harmful"): ("jailbreakbench", "harmbench_test", "strongreject"),
    ("train", "harmless"): ("alpaca",),
    ("validation", "harmless"): ("alpaca",),
    ("test", "harmless"): ("alpaca",),
}


# --------------------------------------------------------------------------- ids


def normalise_instruction(text: str) -> str:
    """Strip, and collapse every whitespace run (``str.isspace`` characters) to one space."""
    return collapse_whitespace(text)


def prompt_id(label: str, instruction: str, variant: str | None = None) -> str:
    """``<label>-<first 12 hex of sha256(UTF-8 normalised instruction)>``: same in every language.

    ``variant`` (the category) tells apart the rows of one split that repeat a prompt under
    another category: the published harmful test set lists 10 JailbreakBench prompts a second
    time under HarmBench or StrongREJECT categories, and every published translation has both
    rows, so both are prompts (the second id hashes ``text + NUL + category``).
    """
    text = normalise_instruction(instruction) + ("" if variant is None else "\x00" + variant)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{label}-{digest[:12]}"


# --------------------------------------------------------------------------- results


@dataclass
class SourceResult:
    """``prompts`` conforms to PROMPTS; ``rejects`` to REJECTS; ``counts[(split, label)]`` = prompts kept."""

    prompts: pl.DataFrame
    rejects: pl.DataFrame
    counts: dict[tuple[str, str], int]


@dataclass(frozen=True)
class RawPrompt:
    """One prompt of a raw benchmark file."""

    file_key: str  # key of RAW_FILES, or "alpaca"
    source: str  # benchmark name (schemas.polyrefuse.SOURCES)
    instruction: str  # stripped, as the literature's processed files have it
    category: str | None
    source_file: str
    line: int  # 1-based record number in source_file
    functional_category: str | None = None  # HarmBench only: standard, contextual, copyright
    tags: str | None = None  # HarmBench only


@dataclass
class _Candidate:
    split: str
    label: str
    position: int
    instruction: str
    category: str | None
    source_file: str
    line: int
    raw: Any
    source: str | None = None  # None until traced
    variant: str | None = None  # set for a same-split repeat under another category
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = normalise_instruction(self.instruction)


class _RejectLog:
    """Collects rejects; sorted by (label, split, file, line) when framed."""

    def __init__(self) -> None:
        self._rows: list[tuple[tuple, dict]] = []

    def add(
        self,
        reason: str,
        detail: str,
        source_file: str,
        line: int | None,
        raw: Any,
        *,
        record_id: str | None = None,
        order: tuple = (),
    ) -> None:
        text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        self._rows.append(
            (
                (order or (-1, -1)) + (source_file, line or 0),  # raw-file rejects first
                {
                    "record_id": record_id,
                    "drop_reason": reason,
                    "detail": detail,
                    "source_file": source_file,
                    "line": line,
                    "raw": text[:RAW_LIMIT],
                },
            )
        )

    def frame(self) -> pl.DataFrame:
        schema = REJECTS.polars_schema()
        rows = [row for _, row in sorted(self._rows, key=lambda item: item[0])]
        body = pl.DataFrame(rows, schema={n: t for n, t in schema.items() if n != "reject_no"}, orient="row")
        out = body.with_row_index("reject_no").with_columns(pl.col("reject_no").cast(pl.Int64))
        return REJECTS.conform(out)


def _order(split: str, label: str) -> tuple[int, int]:
    return (LABEL.index(label), SPLITS.index(split))


# --------------------------------------------------------------------------- file reading


def _load_json(path: Path, what: str, fix: str) -> Any:
    if not path.is_file():
        raise InputError(path, f"{what} is missing", fix)
    return load_json_file(path)


def _load_json_list(path: Path, what: str, fix: str) -> list:
    data = _load_json(path, what, fix)
    if not isinstance(data, list):
        raise InputError(
            path,
            f'expected a JSON list of {{"instruction", "category"}} rows, got a JSON {type(data).__name__}',
            "Give the file as published (a list of rows)",
        )
    return data


def split_path(splits_dir: Path, split: str, label: str) -> Path:
    """``<splits_dir>/<label>_<train|val|test>.json`` (the files say ``val`` for validation)."""
    return Path(splits_dir) / f"{label}_{SPLIT_FILE_STEMS[split]}.json"


def _parse_rows(
    records: Sequence[Any],
    source_file: str,
    split: str,
    label: str,
    log: _RejectLog,
    *,
    lines: Sequence[int] | None = None,
) -> list[_Candidate]:
    """Rows of a split file -> candidates (position = row index); bad rows -> rejects."""
    out: list[_Candidate] = []
    order = _order(split, label)
    for position, record in enumerate(records):
        line = lines[position] if lines is not None else position + 1
        if not isinstance(record, dict):
            log.add(
                "bad_record",
                f"row is a JSON {type(record).__name__}, not an object",
                source_file,
                line,
                record,
                order=order,
            )
            continue
        instruction = record.get("instruction")
        if not isinstance(instruction, str):
            got = "missing" if "instruction" not in record else f"a {type(instruction).__name__}"
            log.add(
                "bad_record",
                f"'instruction' is {got}, not a string; give the prompt text as a string",
                source_file,
                line,
                record,
                order=order,
            )
            continue
        category = record.get("category")
        if category is not None and not isinstance(category, str):
            log.add(
                "bad_record",
                f"'category' is a {type(category).__name__}, not a string or null",
                source_file,
                line,
                record,
                order=order,
            )
            continue
        if not normalise_instruction(instruction):
            log.add("empty_prompt", "'instruction' is empty or whitespace only", source_file, line, record, order=order)
            continue
        out.append(_Candidate(split, label, position, instruction, category, source_file, line, record))
    return out


def _drop_duplicates(cands: list[_Candidate], seen: dict[str, _Candidate], log: _RejectLog) -> list[_Candidate]:
    """Keeps the first row of each normalised text (``seen`` carries what earlier splits kept).

    A row that repeats a prompt of the same split under another category is kept as a variant
    (see :func:`prompt_id`); a repeat with the same category, or across splits, is a reject.
    """
    kept: list[_Candidate] = []
    seen_variants: set[tuple[str, str | None]] = set()
    for c in cands:
        first = seen.get(c.key)
        if first is not None and first.split == c.split and first.category != c.category and (c.key, c.category) not in seen_variants:
            c.variant = c.category or ""  # the same prompt listed again under another category: a prompt of its own
            seen_variants.add((c.key, c.category))
            kept.append(c)
            continue
        if first is not None:
            where = f"earlier in {c.split}" if first.split == c.split else f"in {first.split}, which keeps it"
            log.add(
                "duplicate_prompt",
                f"same prompt (after whitespace normalisation) as row {first.line} of {Path(first.source_file).name} "
                f"({where}); the first is kept",
                c.source_file,
                c.line,
                c.raw,
                record_id=prompt_id(c.label, c.instruction),
                order=_order(c.split, c.label),
            )
            continue
        seen[c.key] = c
        kept.append(c)
    return kept


def _sample(cands: list[_Candidate], size: int, seed: int, source_file: str) -> list[_Candidate]:
    """``random.Random(seed).sample`` over the usable rows, kept in file order."""
    if size > len(cands):
        raise InputError(
            source_file,
            f"holds {len(cands):,} usable rows, fewer than the {size:,} to sample",
            "Pass smaller harmless_sizes, or harmless_sizes=None to keep every row",
        )
    chosen = sorted(random.Random(seed).sample(range(len(cands)), size))
    return [cands[i] for i in chosen]


# --------------------------------------------------------------------------- raw benchmark files


def _read_csv(path: Path, file_key: str, source: str, log: _RejectLog | None) -> list[RawPrompt]:
    text_col, cat_col = _CSV_COLUMNS[file_key]
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        needed = [c for c in (text_col, cat_col) if c is not None]
        if file_key.startswith("harmbench"):
            needed += ["FunctionalCategory", "Tags"]
        missing = [c for c in needed if c not in columns]
        if missing:
            raise InputError(
                path, f"lacks the columns {missing} (it has {columns})", f"Give the {source} CSV as published"
            )
        out = []
        for i, row in enumerate(reader):
            line = i + 1
            value = row.get(text_col)
            if not isinstance(value, str):
                if log is not None:
                    log.add("bad_record", f"row has no {text_col!r} value (too few fields)", str(path), line, row)
                continue
            if not value.strip():
                if log is not None:
                    log.add("empty_prompt", f"{text_col!r} is empty or whitespace only", str(path), line, row)
                continue
            category = (row.get(cat_col) or None) if cat_col else None
            out.append(
                RawPrompt(
                    file_key,
                    source,
                    value.strip(),
                    category,
                    str(path),
                    line,
                    functional_category=row.get("FunctionalCategory"),
                    tags=row.get("Tags"),
                )
            )
    return out


def _read_strings(
    path: Path, file_key: str, source: str, items: Sequence[Any], log: _RejectLog | None
) -> list[RawPrompt]:
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            if log is not None:
                log.add("bad_record", f"entry is a {type(item).__name__}, not a string", str(path), i + 1, item)
            continue
        if not item.strip():
            if log is not None:
                log.add("empty_prompt", "entry is empty or whitespace only", str(path), i + 1, item)
            continue
        out.append(RawPrompt(file_key, source, item.strip(), None, str(path), i + 1))
    return out


def read_raw_sources(raw_dir: Path | str) -> dict[str, list[RawPrompt]]:
    """Every prompt of the raw harmful benchmark files, by RAW_FILES key, in file order.

    Texts are stripped (as the literature's processed files); HarmBench rows keep their
    functional category and tags (nothing is filtered here); empty or malformed entries are
    skipped (a rebuild reports them as rejects). A missing or unreadable file is an InputError.
    """
    return _read_raw_sources(Path(raw_dir), None)


def _read_raw_sources(raw_dir: Path, log: _RejectLog | None) -> dict[str, list[RawPrompt]]:
    fix = (
        "Copy the raw benchmark files (advbench.csv, harmbench_val.csv, harmbench_test.csv, jailbreakbench.csv, "
        "strongreject.csv, malicious_instruct.txt, tdc2023_dev_behaviors.json, tdc2023_test_behaviors.json) into "
        f"{raw_dir}"
    )
    out: dict[str, list[RawPrompt]] = {}
    for file_key, (source, names) in RAW_FILES.items():
        rows: list[RawPrompt] = []
        for name in names:
            path = raw_dir / name
            if not path.is_file():
                raise InputError(path, "raw source file is missing", fix)
            if file_key in _CSV_COLUMNS:
                rows += _read_csv(path, file_key, source, log)
            elif name.endswith(".txt"):
                with open(path, encoding="utf-8-sig") as f:
                    rows += _read_strings(path, file_key, source, f.read().splitlines(), log)
            else:
                items = _load_json(path, "raw source file", fix)
                if not isinstance(items, list):
                    raise InputError(path, f"expected a JSON list of strings, got a JSON {type(items).__name__}", fix)
                rows += _read_strings(path, file_key, source, items, log)
        out[file_key] = rows
    return out


def _default_alpaca_path(raw_dir: Path) -> Path:
    return Path(raw_dir).parent / "processed" / "alpaca.json"


def _load_alpaca(path: Path) -> list:
    return _load_json_list(
        path,
        "Alpaca file (processed/alpaca.json)",
        "Give processed/alpaca.json of the refusal-direction release (Alpaca instructions without input), "
        "or pass alpaca_path",
    )


# --------------------------------------------------------------------------- tracing


class _SourceIndex:
    """Normalised text -> raw prompts holding it."""

    def __init__(self, raw: dict[str, list[RawPrompt]]) -> None:
        self._by_key: dict[str, list[RawPrompt]] = {}
        for rows in raw.values():
            for r in rows:
                self._by_key.setdefault(normalise_instruction(r.instruction), []).append(r)

    def trace(self, c: _Candidate) -> str:
        """The split's own benchmarks first, then any; among several, the one with the same category."""
        matches = self._by_key.get(c.key, [])  # in RAW_FILES order, then Alpaca
        designated = SPLIT_SOURCES[(c.split, c.label)]
        own = sorted((m for m in matches if m.file_key in designated), key=lambda m: designated.index(m.file_key))
        for pool in (own, matches):
            if pool:
                same_category = [m for m in pool if m.category == c.category]
                return (same_category or pool)[0].source
        return UNKNOWN_SOURCE


# --------------------------------------------------------------------------- frames


def _result(cands: list[_Candidate], log: _RejectLog) -> SourceResult:
    cands = sorted(cands, key=lambda c: (SPLITS.index(c.split), LABEL.index(c.label), c.position))
    df = pl.DataFrame(
        {
            "prompt_id": [prompt_id(c.label, c.instruction, c.variant) for c in cands],
            "split": [c.split for c in cands],
            "label": [LABEL.index(c.label) for c in cands],
            "category": [c.category for c in cands],
            "source": [c.source or UNKNOWN_SOURCE for c in cands],
            "position": [c.position for c in cands],
            "instruction_en": [c.instruction for c in cands],
        },
        schema=PROMPTS.polars_schema(),
    )
    counts = {(s, lab): 0 for s in SPLITS for lab in LABEL.names}
    for c in cands:
        counts[(c.split, c.label)] += 1
    return SourceResult(prompts=PROMPTS.conform(df), rejects=log.frame(), counts=counts)


def _harmless_size(sizes: tuple[int, int, int] | None, split: str) -> int | None:
    return None if sizes is None else sizes[SPLITS.index(split)]


# --------------------------------------------------------------------------- public API


def read_splits(
    splits_dir: Path | str,
    *,
    raw_dir: Path | str | None = None,
    alpaca_path: Path | str | None = None,
    harmless_sizes: tuple[int, int, int] | None = HARMLESS_SIZES,
    harmless_seed: int = HARMLESS_SEED,
) -> SourceResult:
    """The English prompts of the six published split files, traced to their benchmarks.

    Inputs: ``splits_dir`` holding ``{harmful,harmless}_{train,val,test}.json``. ``position`` is
    the row index in the split file (translations are aligned by it), ``instruction_en`` the text
    as published.

    Rules, per label: rows are checked (``bad_record``, ``empty_prompt``); a prompt seen before
    (normalised text) is a ``duplicate_prompt`` reject, the first kept, where "before" means
    earlier in the same file or in a split of higher precedence (test, then validation, then
    train), so no prompt id is used twice. Harmless splits are then cut to ``harmless_sizes``
    (train, validation, test; None keeps every row): ``random.Random(harmless_seed).sample`` over
    the usable rows, kept in file order. The defaults give 260 / 39 / 562 harmful prompts (the
    published 572 test rows minus 10 repeats, see the module docstring) and 200 / 200 / 500
    harmless ones; the harmless draw is ours, not the published one (which we could not re-draw).

    Tracing: a row's ``source`` is the benchmark of a raw prompt with the same normalised text,
    looked up first in the files the literature built that split from (train: AdvBench,
    MaliciousInstruct, TDC2023; validation: HarmBench val; test: JailbreakBench, HarmBench test,
    StrongREJECT; harmless: Alpaca), then in all of them; where several match (JailbreakBench
    reuses AdvBench, TDC2023 and HarmBench behaviours, StrongREJECT reuses AdvBench and
    MaliciousInstruct ones) the one with the row's category wins, else the first in that order.
    Raw files are read from ``raw_dir`` (default ``splits_dir/../raw``) and Alpaca from
    ``alpaca_path`` (default ``raw_dir/../processed/alpaca.json``). When the default raw folder
    does not exist nothing is traced and every source is ``unknown``.

    Errors: a missing split file, a file that is not JSON or not a JSON list, and a missing raw
    file (when tracing) are :class:`InputError` s naming the file; so is a harmless file with
    fewer usable rows than its sample size.
    """
    splits_dir = Path(splits_dir)
    log = _RejectLog()
    kept: list[_Candidate] = []
    for label in ("harmful", "harmless"):
        seen: dict[str, _Candidate] = {}
        for split in PRECEDENCE:
            path = split_path(splits_dir, split, label)
            records = _load_json_list(
                path,
                "split file",
                f"Put the six split files ({{harmful,harmless}}_{{train,val,test}}.json, refusal-direction "
                f"dataset/splits) in {splits_dir}, or pass the folder that holds them",
            )
            cands = _drop_duplicates(_parse_rows(records, str(path), split, label, log), seen, log)
            size = _harmless_size(harmless_sizes, split) if label == "harmless" else None
            kept += cands if size is None else _sample(cands, size, harmless_seed, str(path))

    if raw_dir is None and not (splits_dir.parent / "raw").is_dir():
        return _result(kept, log)
    raw_dir = Path(raw_dir) if raw_dir is not None else splits_dir.parent / "raw"
    if not raw_dir.is_dir():
        raise InputError(raw_dir, "raw source folder is missing", "Pass the folder holding the raw benchmark files")
    raw = read_raw_sources(raw_dir)
    alpaca_file = Path(alpaca_path) if alpaca_path is not None else _default_alpaca_path(raw_dir)
    raw["alpaca"] = _read_alpaca_prompts(alpaca_file)
    index = _SourceIndex(raw)
    for c in kept:
        c.source = index.trace(c)
    return _result(kept, log)


def _read_alpaca_prompts(path: Path) -> list[RawPrompt]:
    out = []
    for i, rec in enumerate(_load_alpaca(path)):
        text = rec.get("instruction") if isinstance(rec, dict) else None
        if isinstance(text, str) and text.strip():
            out.append(RawPrompt("alpaca", "alpaca", text.strip(), None, str(path), i + 1))
    return out


def rebuild_splits(
    raw_dir: Path | str,
    *,
    seed: int = 0,
    max_per_source: int = MAX_PER_SOURCE,
    alpaca_path: Path | str | None = None,
    harmless_sizes: tuple[int, int, int] | None = HARMLESS_SIZES,
    harmless_seed: int = HARMLESS_SEED,
) -> SourceResult:
    """Rebuilds the English splits from the raw benchmark files with the literature's rules.

    Harmful (``source`` known by construction; texts stripped as the literature's processed files):

    * test = JailbreakBench + HarmBench test + StrongREJECT, concatenated in that order (as the
      published file: the same 572 rows in the same positions, 10 of them ``duplicate_prompt``);
    * validation = HarmBench val, minus prompts also in test (``duplicate_prompt``); position
      counts the remaining rows (so it matches the published file);
    * train = AdvBench + MaliciousInstruct + TDC2023 (dev then test file): from each source with
      more than ``max_per_source`` prompts, ``max_per_source`` drawn with one
      ``random.Random(seed)`` used in that source order (``sample`` over row indices, kept in
      file order); then prompts also in validation or test are removed (``duplicate_prompt``),
      so at most ``max_per_source`` per source remain. The literature drew unseeded, in sample
      order, so train is not the published selection and its positions do not align with
      published train translations.
    * HarmBench contextual and copyright behaviours are ``not_standard_behaviour`` rejects.

    Harmless: ``alpaca_path`` (default ``raw_dir/../processed/alpaca.json``) shuffled with
    ``random.Random(42)`` and cut 60/20/20, which reproduces the published split files row for
    row; then the same checks and ``harmless_sizes`` draw as :func:`read_splits`, so with the
    same ``harmless_seed`` the harmless prompts equal those of ``read_splits``.

    Errors: a missing or unreadable raw file or Alpaca file is an :class:`InputError` naming it.
    """
    raw_dir = Path(raw_dir)
    log = _RejectLog()
    raw = _read_raw_sources(raw_dir, log)
    kept: list[_Candidate] = []

    def candidates(split: str, rows: list[RawPrompt]) -> list[_Candidate]:
        return [
            _Candidate(split, "harmful", pos, r.instruction, r.category, r.source_file, r.line, r.instruction, r.source)
            for pos, r in enumerate(rows)
        ]

    def standard(rows: list[RawPrompt]) -> list[RawPrompt]:
        out = []
        for r in rows:
            functional = (r.functional_category or "").lower()
            if "copyright" in functional or "context" in (r.tags or "").lower():
                log.add(
                    "not_standard_behaviour",
                    f"HarmBench {r.functional_category} behaviour (tags {r.tags!r}); the splits keep standard ones only",
                    r.source_file,
                    r.line,
                    r.instruction,
                )
                continue
            out.append(r)
        return out

    def drop_seen(rows: list[RawPrompt], split: str, seen: dict[str, _Candidate]) -> list[RawPrompt]:
        out = []
        for r in rows:
            first = seen.get(normalise_instruction(r.instruction))
            if first is not None:
                log.add(
                    "duplicate_prompt",
                    f"also in {first.split} (row {first.line} of {Path(first.source_file).name}), which keeps it",
                    r.source_file,
                    r.line,
                    r.instruction,
                    record_id=prompt_id("harmful", r.instruction),
                    order=_order(split, "harmful"),
                )
                continue
            out.append(r)
        return out

    seen: dict[str, _Candidate] = {}
    test_rows = raw["jailbreakbench"] + standard(raw["harmbench_test"]) + raw["strongreject"]
    kept += _drop_duplicates(candidates("test", test_rows), seen, log)
    val_rows = drop_seen(standard(raw["harmbench_val"]), "validation", seen)
    kept += _drop_duplicates(candidates("validation", val_rows), seen, log)
    rng = random.Random(seed)
    train_rows: list[RawPrompt] = []
    for key in SPLIT_SOURCES[("train", "harmful")]:
        rows = raw[key]
        if len(rows) > max_per_source:
            rows = [rows[i] for i in sorted(rng.sample(range(len(rows)), max_per_source))]
        train_rows += rows
    train_rows = drop_seen(train_rows, "train", seen)
    kept += _drop_duplicates(candidates("train", train_rows), seen, log)

    alpaca_file = Path(alpaca_path) if alpaca_path is not None else _default_alpaca_path(raw_dir)
    alpaca = _load_alpaca(alpaca_file)
    order = list(range(len(alpaca)))
    random.Random(ALPACA_SPLIT_SEED).shuffle(order)  # same permutation as shuffling the rows
    n_train = int(ALPACA_SPLIT_FRACTIONS[0] * len(order))
    n_val = int(ALPACA_SPLIT_FRACTIONS[1] * len(order))
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_val), "test": (n_train + n_val, len(order))}
    seen = {}
    for split in PRECEDENCE:
        lo, hi = bounds[split]
        idx = order[lo:hi]
        cands = _parse_rows(
            [alpaca[i] for i in idx], str(alpaca_file), split, "harmless", log, lines=[i + 1 for i in idx]
        )
        cands = _drop_duplicates(cands, seen, log)
        size = _harmless_size(harmless_sizes, split)
        chosen = cands if size is None else _sample(cands, size, harmless_seed, str(alpaca_file))
        for c in chosen:
            c.source = "alpaca"
        kept += chosen
    return _result(kept, log)
