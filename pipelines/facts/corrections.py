"""Verified corrections applied to a facts table: fixed forms and aliases for the next count.

People verify doubtful facts (``annotation/recipes/facts.py``); a pull turns their verdicts into a
corrections table, and :func:`apply_fact_corrections` turns a facts table plus those corrections
into the facts table of the next build. This module reads the corrections as plain columns and
imports nothing from the annotation layer.

Corrections (one row per fact): ``lang``, ``index``, ``status`` (``fixed``, ``confirmed``, or null
for a judgment that could not be used), and for a fixed fact the verified values ``subject``,
``object`` (a form; null keeps the table's) and ``subject_aliases``, ``object_aliases`` (the whole
alias list; null keeps the table's); ``item_id`` is used in the report when present.

Rules:

* A fixed form **replaces** the main form; the old form is **not** kept as an alias: it was
  judged wrong (a verifier who finds both right keeps the old one by listing it as an alias).
  An alias list replaces the old list, so a verifier can add and remove aliases.
* Aliases are cleaned as the facts reader cleans them: stripped, blank ones, repeats and the
  ones equal to the main form dropped (an alias that became the main form goes).
* Only ``fixed`` rows change anything. A correction for a fact the table does not hold (another
  facts set, a language left out of the build) is reported, not applied; so are fixes that
  change nothing (already applied: applying the same corrections twice is a no-op).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

FACT_COLUMNS = ("lang", "relation", "index", "subject", "object", "subject_aliases", "object_aliases")
FORMS = ("subject", "object")
ALIASES = ("subject_aliases", "object_aliases")
CORRECTION_COLUMNS = ("lang", "index", "status", *FORMS, *ALIASES)


@dataclass(frozen=True)
class FactChange:
    """One field of one fact changed: a form (``before`` -> ``after``) or an alias list (``added``, ``removed``)."""

    fact: str  # <lang>:<index>
    field: str  # subject | object | subject_aliases | object_aliases
    before: str | None = None
    after: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.field in FORMS:
            return f"{self.fact} {self.field}: {self.before!r} -> {self.after!r}"
        parts = [f"+{a!r}" for a in self.added] + [f"-{r!r}" for r in self.removed]
        return f"{self.fact} {self.field}: {', '.join(parts)}"


@dataclass(frozen=True)
class CorrectionReport:
    changes: tuple[FactChange, ...] = ()
    unknown: tuple[str, ...] = ()  # fixed corrections for facts the table does not hold: not applied
    unchanged: tuple[str, ...] = ()  # fixed corrections that change nothing (already applied)
    confirmed: int = 0
    unsettled: int = 0  # status null: no usable judgment

    @property
    def facts_changed(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.fact for c in self.changes))

    def to_json(self) -> dict[str, Any]:
        return {
            "facts_changed": len(self.facts_changed),
            "confirmed": self.confirmed,
            "unsettled": self.unsettled,
            "unknown": list(self.unknown),
            "unchanged": list(self.unchanged),
            "changes": [
                {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.__dict__.items() if v not in (None, ())}
                for c in self.changes
            ],
        }


def clean_aliases(aliases: list[str] | None, main: str) -> list[str]:
    """Stripped, without blanks, repeats or the main form; order kept."""
    kept: list[str] = []
    for alias in (a.strip() for a in aliases or [] if a is not None):
        if alias and alias != main and alias not in kept:
            kept.append(alias)
    return kept


def apply_fact_corrections(facts_table: pl.DataFrame, corrections: pl.DataFrame) -> tuple[pl.DataFrame, CorrectionReport]:
    """``facts_table`` (at least :data:`FACT_COLUMNS`; other columns are dropped) with the fixed
    corrections applied, rows in the same order, and the report of what changed.

    Raises ``ValueError`` when a column is missing or a fact has more than one correction.
    """
    for name, frame, needed in (("facts table", facts_table, FACT_COLUMNS), ("corrections", corrections, CORRECTION_COLUMNS)):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"apply_fact_corrections: the {name} lacks column(s) {', '.join(missing)}")
    # rows without a fact (an unreadable item id) are unsettled ones: they may repeat
    keyed = corrections.filter(pl.col("lang").is_not_null() & pl.col("index").is_not_null())
    dupes = keyed.group_by("lang", "index").len().filter(pl.col("len") > 1)
    if dupes.height:
        lang, index, n = dupes.row(0)
        raise ValueError(f"apply_fact_corrections: {n} corrections for {lang}:{index}; give one per fact (the latest judgment)")

    status = corrections["status"]
    fixes = {(r["lang"], r["index"]): r for r in corrections.filter(status == "fixed").iter_rows(named=True)}
    rows = facts_table.select(FACT_COLUMNS).to_dicts()
    changes: list[FactChange] = []
    unchanged: list[str] = []
    for row in rows:
        fix = fixes.pop((row["lang"], row["index"]), None)
        if fix is None:
            continue
        fact = fix.get("item_id") or f"{row['lang']}:{row['index']}"
        here = _apply_one(row, fix, fact)
        if not here:
            unchanged.append(fact)
        changes.extend(here)
    unknown = sorted(r.get("item_id") or f"{lang}:{index}" for (lang, index), r in fixes.items())
    corrected = pl.DataFrame(rows, schema=facts_table.select(FACT_COLUMNS).schema)
    return corrected, CorrectionReport(
        changes=tuple(changes),
        unknown=tuple(unknown),
        unchanged=tuple(unchanged),
        confirmed=int((status == "confirmed").sum()),
        unsettled=int(status.is_null().sum()),
    )


def _apply_one(row: dict[str, Any], fix: dict[str, Any], fact: str) -> list[FactChange]:
    """Apply one fixed correction to ``row`` in place; the changes it made."""
    changes = []
    for form in FORMS:
        new = (fix[form] or "").strip()
        if new and new != row[form]:
            changes.append(FactChange(fact, form, before=row[form], after=new))
            row[form] = new
    for alias_field, form in zip(ALIASES, FORMS):
        old = list(row[alias_field] or [])
        new = clean_aliases(fix[alias_field] if fix[alias_field] is not None else old, row[form])
        if new != old:
            added = tuple(a for a in new if a not in old)
            removed = tuple(a for a in old if a not in new)
            if added or removed:
                changes.append(FactChange(fact, alias_field, added=added, removed=removed))
            row[alias_field] = new
    return changes
