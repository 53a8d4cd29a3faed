"""The dataset card (README.md): YAML front matter for `datasets`/the Hub, and a Markdown body.

The front matter declares, per config, the ``data_files`` of every split (``configs:``) and the
features with split sizes (``dataset_info:``), so ``load_dataset(folder, config)`` restores
ClassLabel names, label lists and nested structs even if the parquet schema metadata were lost,
and checks the number of examples per split. The card holds no time stamp and no absolute path:
the same spec gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from releases.spec import CardText
from schemas.table import Table


@dataclass(frozen=True)
class SplitSummary:
    name: str
    num_examples: int
    num_bytes: int  # in-memory Arrow size, as `datasets` records it
    files: tuple[str, ...]
    download_size: int  # parquet bytes of the split


@dataclass(frozen=True)
class ConfigSummary:
    name: str
    table: Table
    features: Any  # datasets.Features
    split_column: str | None
    splits: tuple[SplitSummary, ...] = field(default_factory=tuple)

    @property
    def num_examples(self) -> int:
        return sum(s.num_examples for s in self.splits)


def data_files_pattern(config: str, split: str) -> str:
    return f"{config}/{split}-*.parquet"


def describe_feature(feature: Any) -> str:
    """A short human-readable type: ``string``, ``label (oppose, support)``, ``list of ...``."""
    from datasets import ClassLabel, LargeList, List, Value

    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, ClassLabel):
        return "label (" + ", ".join(f"{i}={n}" for i, n in enumerate(feature.names)) + ")"
    if isinstance(feature, (List, LargeList)):
        return f"list of {describe_feature(feature.feature)}"
    if isinstance(feature, dict):
        return "{" + ", ".join(f"{k}: {describe_feature(v)}" for k, v in feature.items()) + "}"
    if isinstance(feature, (list, tuple)) and feature:
        return f"list of {describe_feature(feature[0])}"
    return type(feature).__name__


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def front_matter(card: CardText, configs: list[ConfigSummary]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "pretty_name": card.pretty_name or card.title,
        "license": card.license,
    }
    for key, value in card.metadata.items():
        meta[key] = value
    meta["configs"] = [
        {
            "config_name": c.name,
            "data_files": [{"split": s.name, "path": data_files_pattern(c.name, s.name)} for s in c.splits],
        }
        for c in configs
    ]
    meta["dataset_info"] = [
        {
            "config_name": c.name,
            "features": c.features._to_yaml_list(),
            "splits": [{"name": s.name, "num_bytes": s.num_bytes, "num_examples": s.num_examples} for s in c.splits],
            "download_size": sum(s.download_size for s in c.splits),
            "dataset_size": sum(s.num_bytes for s in c.splits),
        }
        for c in configs
    ]
    return meta


def render_card(card: CardText, *, dataset: str, version: str, configs: list[ConfigSummary]) -> str:
    yaml_text = yaml.safe_dump(
        front_matter(card, configs), sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
    )
    out: list[str] = ["---\n", yaml_text, "---\n\n"]
    out.append(f"# {card.title}\n\n")
    out.append(f"Release `{dataset}` version **{version}**.\n\n")
    if card.summary.strip():
        out.append(card.summary.strip() + "\n\n")

    out.append("## Configs and splits\n\n")
    out.append("| config | split | rows | files |\n| --- | --- | ---: | ---: |\n")
    for c in configs:
        for s in c.splits:
            out.append(f"| {c.name} | {s.name} | {s.num_examples:,} | {len(s.files)} |\n")
        out.append(f"| {c.name} | **all** | **{c.num_examples:,}** | {sum(len(s.files) for s in c.splits)} |\n")
    out.append("\n")

    for c in configs:
        out.append(f"### Config `{c.name}`\n\n")
        if c.table.description:
            out.append(c.table.description.strip() + "\n\n")
        split_note = (
            f"split by the column `{c.split_column}`" if c.split_column else "a single split `train`"
        )
        out.append(f"One row per `{c.table.primary_key}` (unique, rows sorted by it); {split_note}.\n\n")
        out.append("| column | type | description |\n| --- | --- | --- |\n")
        for col in c.table.released_columns:
            nullable = " (nullable)" if col.nullable else ""
            out.append(
                f"| `{col.name}` | {_cell(describe_feature(c.features[col.name]))}{nullable} | {_cell(col.description)} |\n"
            )
        out.append("\n")

    if card.body_markdown.strip():
        out.append(card.body_markdown.strip() + "\n\n")

    out.append("## Licence\n\n")
    out.append(f"License: `{card.license}`.")
    out.append((" " + card.license_note.strip()) if card.license_note.strip() else "")
    out.append("\n\n")

    out.append("## How to load\n\n")
    out.append(
        "This folder is a `datasets` repository: parquet files per config and split, declared in the YAML "
        "header of this card together with their features (class-label names included). From the folder "
        "that holds the releases:\n\n"
    )
    out.append("```python\nfrom datasets import load_dataset\n\n")
    for c in configs:
        out.append(f'{c.name.replace("-", "_").replace(".", "_")} = load_dataset("{dataset}/{version}", "{c.name}")\n')
    out.append("```\n\n")
    out.append(
        "Label columns load as `ClassLabel` (`ds.features[col].int2str(i)` gives the name). "
        "`manifest.json` records the inputs, settings, code revision and validation summary of this "
        "release; `sha256sum -c checksums.sha256` checks every file.\n"
    )

    if card.citation and card.citation.strip():
        out.append("\n## Citation\n\n```bibtex\n" + card.citation.strip() + "\n```\n")
    return "".join(out)
