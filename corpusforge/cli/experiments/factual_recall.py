"""``corpusforge experiment factual-recall``: KLAR facts asked of model checkpoints, set against a
fact-frequency release (the study: ``experiments/factual_recall.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

NAME = "factual-recall"
SUMMARY = "Three-shot KLAR recall per language and checkpoint against the release's fact frequencies."


def command(
    release: Annotated[str, typer.Option("--release", help="Fact-frequency release folder (`corpusforge release facts`), or a dataset datasets loads offline.")],
    klar: Annotated[Path, typer.Option("--klar", help="KLAR folder (<lang>/<relation>.json with prompt templates), e.g. ../shared/data/klar.")],
    model: Annotated[list[str], typer.Option("--model", help="Local model folder, or path@step for a checkpoint (repeat for several checkpoints).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder to write (tables, plots, metrics.json, report.md, config.json).")],
    languages: Annotated[Optional[str], typer.Option("--languages", help="Comma-separated language codes (default: every KLAR language; en is needed for consistency).")] = None,
    relations: Annotated[Optional[str], typer.Option("--relations", help="Comma-separated KLAR relations (default: all 12).")] = None,
    max_facts_per_relation: Annotated[Optional[int], typer.Option("--max-facts-per-relation", min=1, help="Ask this many facts per relation (seeded, the same indices in every language); default all.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per generation batch.")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fact subset and of the demonstrations.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto (GPU when present), cpu, cuda, cuda:1 ...")] = "auto",
) -> None:
    """Ask KLAR facts in three-shot prompts of each model checkpoint (greedy, at most 10 tokens) and
    report accuracy per language and relation, consistency with English, accuracy by frequency bin
    and the best frequency threshold per language, across the checkpoints."""
    from corpusforge.cli.common import out
    from experiments.factual_recall import RecallOptions, parse_model_spec, run_factual_recall

    options = RecallOptions(languages=_codes(languages), relations=_codes(relations), max_facts_per_relation=max_facts_per_relation, batch_size=batch_size, seed=seed, device=device)
    result = run_factual_recall(release, klar, [parse_model_spec(m) for m in model], out_dir, options)
    final = result.metrics["final"]
    out.print(f"{result.metrics['facts_asked']} facts per checkpoint, {len(result.metrics['checkpoints'])} checkpoint(s)", highlight=False)
    for row in result.metrics["checkpoints"]:
        out.print(f"  {row['checkpoint']:<16} accuracy {row['accuracy']:.3f}  (counts: {row['counts']})", soft_wrap=True, highlight=False)
    for lang, r in final["languages"].items():
        consistency = "n/a" if r["consistency_en"] is None else f"{r['consistency_en']:.3f}"
        out.print(f"  {lang:<4} accuracy {r['accuracy']:.3f}  Jaccard with en {consistency}", highlight=False)
    out.print(f"wrote {result.run.root} (report.md, metrics.json, tables/, plots/)", soft_wrap=True, highlight=False)


def _codes(text: str | None) -> tuple[str, ...] | None:
    """``"en, fr"`` -> ("en", "fr"); None stays None."""
    return tuple(c.strip() for c in text.split(",") if c.strip()) if text else None
