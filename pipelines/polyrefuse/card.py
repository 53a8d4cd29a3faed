"""The prose of the PolyRefuse dataset card and the statistics it reports.

:func:`release_statistics` summarises a candidate (rows and declared gaps of the released
languages) as plain data: rows per language, label and split; flags per check and language;
rows waiting for proofreading; gaps with their reasons. The release stores it in its manifest and
:func:`card_body` renders it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from pipelines.polyrefuse.checks import CHECKS
from pipelines.polyrefuse.settings import PolyRefuseSettings
from schemas.polyrefuse import LABEL, PROOFREADING, SPLITS

TITLE = "PolyRefuse: harmful and harmless prompts in 14 languages"
SUMMARY = (
    "The English harmful and harmless instruction splits of the refusal-direction literature (Arditi et al. "
    "2024: AdvBench, MaliciousInstruct, TDC2023, HarmBench, JailbreakBench, StrongREJECT; Alpaca) and their "
    "translations, as used by PolyRefuse (arXiv 2505.17306) to study refusal across languages. Every prompt "
    "keeps one id in every language."
)
LICENSE_NOTE = (
    "The splits and the published translations are distributed under Apache-2.0 (refusal_direction, "
    "Multilingual-Refusal); the benchmarks they come from keep their own terms. Harmful prompts describe "
    "harmful requests: for safety research only."
)
CELLS: tuple[tuple[str, str], ...] = tuple((label, split) for label in reversed(LABEL.names) for split in SPLITS)


def release_statistics(rows: pl.DataFrame, missing: pl.DataFrame, languages: tuple[str, ...]) -> dict[str, Any]:
    """Counts, flag statistics and gaps of ``languages`` (rows/missing as in the candidate)."""
    stats: dict[str, Any] = {"languages": list(languages), "rows": {}, "flags": {}, "proofreading": {}, "models": {}, "gaps": []}
    for lang in languages:
        mine = rows.filter(pl.col("lang") == lang)
        counts = {f"{label}/{split}": 0 for label, split in CELLS}
        for label, split, n in mine.group_by("label", "split").len().iter_rows():
            counts[f"{LABEL.names[label]}/{split}"] = n
        stats["rows"][lang] = {**counts, "total": mine.height}
        flags = mine.select(pl.col("flags").explode()).drop_nulls().get_column("flags").value_counts()
        per_check = {name: 0 for name in CHECKS}
        per_check.update({name: int(n) for name, n in flags.iter_rows()})
        per_check["flagged_rows"] = int((mine.get_column("flags").list.len() > 0).sum())
        per_check["pending_proofreading"] = int((mine.get_column("proofreading") == "pending").sum())
        stats["flags"][lang] = per_check
        status = {name: 0 for name in PROOFREADING}
        status.update({name: int(n) for name, n in mine.group_by("proofreading").len().iter_rows()})
        stats["proofreading"][lang] = status
        stats["models"][lang] = [
            {"backend": b, "model": m, "model_version": v, "rows": int(n)}
            for b, m, v, n in mine.group_by("backend", "model", "model_version").len().sort("len", descending=True).iter_rows()
        ]
    for gap in missing.filter(pl.col("lang").is_in(list(languages))).sort("lang", "label", "split").iter_rows(named=True):
        stats["gaps"].append(
            {"lang": gap["lang"], "label": LABEL.names[gap["label"]], "split": gap["split"], "prompts": gap["prompts"], "reason": gap["reason"]}
        )
    return stats


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def card_body(settings: PolyRefuseSettings, stats: dict[str, Any], translations_from: str | None) -> str:
    src = settings.sources
    languages = stats["languages"]
    english = (
        "the six published split files (`{harmful,harmless}_{train,val,test}.json` of refusal_direction)"
        if src.mode == "published"
        else f"the raw benchmark files, rebuilt with the literature's rules (seed {src.seed}, at most "
        f"{src.max_per_source} harmful train prompts per benchmark)"
    )
    seeded = (
        f"our seeded draw from the Alpaca splits (`random.Random({src.harmless_seed}).sample`, "
        f"{src.harmless_sizes} per train/validation/test)"
    )
    if translations_from and src.mode == "published":
        harmless = (
            "harmless prompts are PolyRefuse's own subsets of the Alpaca splits wherever the published folder "
            "holds their translations, so that every published translation aligns: train and validation are the "
            "200 + 200 split-file rows that `pipelines/polyrefuse/harmless_subsets.json` lists (PolyRefuse's "
            "`harmless_{train,val}_200_sampled.json`, in their order), test the 500 whose English the published "
            f"test files carry; a split without published files keeps {seeded}."
        )
    elif translations_from:
        harmless = (
            f"harmless prompts are {seeded}; PolyRefuse's harmless train/validation translations follow its own "
            "draw and cannot be aligned with a rebuild (declared missing below)."
        )
    else:
        harmless = f"harmless prompts are {seeded}."
    lines = [
        "## Description", "",
        f"English prompts from {english}; {harmless}",
        "",
        "Ids: `<label>-<first 12 hex of sha256(normalised English instruction)>`, identical in every language "
        "config (a prompt that the harmful test split lists twice under two categories hashes its category too).",
        "",
        "Translations: backend `" + settings.translation.backend + "`"
        + (
            (f" (PolyRefuse's published files, folder `{Path(translations_from).name}`)" if translations_from else "")
            + "; `model_version` is the first 12 hex digits of the source file's sha256"
            if settings.translation.backend == "published"
            else " (" + ", ".join(sorted({f"`{m['model']}` version `{m['model_version']}`" for lang in languages
                                         for m in stats["models"][lang] if m["backend"] != "source"})) + ")"
        )
        + ". English rows have backend `source`.",
        "",
        "Automatic checks (flags with reasons; no text is changed): " + ", ".join(f"`{c}`" for c in CHECKS)
        + ". Flagged rows have `proofreading = pending` until a person checks them (then `accepted`, `edited` "
        "with the original kept in `instruction_machine`, or `rejected` with a null text); the others `not_needed`.",
        "",
        "Configs: one per language (" + ", ".join(f"`{l}`" for l in languages) + ") with the splits train, "
        "validation and test, and `parallel` (one row per prompt, one column per language; null where missing).",
        "",
        "## Rows per language", "",
        "| lang | " + " | ".join(f"{label} {split}" for label, split in CELLS) + " | total |",
        "|---|" + "---:|" * (len(CELLS) + 1),
    ]
    for lang in languages:
        counts = stats["rows"][lang]
        lines.append(f"| {lang} | " + " | ".join(f"{counts[f'{l}/{s}']:,}" for l, s in CELLS) + f" | {counts['total']:,} |")
    lines += [
        "", "## Automatic checks: flagged rows per check", "",
        "| lang | " + " | ".join(CHECKS) + " | flagged rows | pending proofreading |",
        "|---|" + "---:|" * (len(CHECKS) + 2),
    ]
    for lang in languages:
        f = stats["flags"][lang]
        lines.append(f"| {lang} | " + " | ".join(f"{f[c]:,}" for c in CHECKS) + f" | {f['flagged_rows']:,} | {f['pending_proofreading']:,} |")
    lines += [
        "", "English rows are the source: they are not checked.", "",
        "## Proofreading", "",
        "| lang | " + " | ".join(PROOFREADING) + " |",
        "|---|" + "---:|" * len(PROOFREADING),
    ]
    for lang in languages:
        status = stats["proofreading"][lang]
        lines.append(f"| {lang} | " + " | ".join(f"{status[name]:,}" for name in PROOFREADING) + " |")
    lines += ["", "## Declared gaps", ""]
    if stats["gaps"]:
        lines += ["| lang | label | split | prompts | reason |", "|---|---|---|---:|---|"]
        for g in stats["gaps"]:
            lines.append(f"| {g['lang']} | {g['label']} | {g['split']} | {g['prompts']:,} | {_cell(g['reason'])} |")
    else:
        lines.append("None: every prompt is present in every released language.")
    return "\n".join(lines) + "\n"
