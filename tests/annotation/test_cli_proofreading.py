"""PolyRefuse proofreading through the command line against the real Label Studio server:
build (published German), push, simulated proofreaders, pull, rebuild with the corrections,
validate, release, load the release with `datasets`."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.corpusforge.test_cli_polyrefuse import SAMPLE, SOURCES
from tests.corpusforge.test_cli_sad import REPO, cf

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SAMPLE.is_dir() and (SOURCES / "splits").is_dir()), reason="PolyRefuse data not found"),
]


def test_proofreading_round_trip_applies_an_edited_translation_in_the_release(label_studio, tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", label_studio.token)
    ws = str(tmp_path / "ws")
    s = [
        "--set", f"annotation.label_studio.url={label_studio.url}",
        "--set", "annotation.polyrefuse.annotators={de = ['anna']}",
        "--set", "annotation.polyrefuse.audit_fraction=0.01",
        "--set", "polyrefuse.languages=['de']",
        "--set", "polyrefuse.validation.allow_declared_missing=true",  # rows rejected at proofreading count as declared missing
    ]

    def run(*args):
        result = cf(*args, "-w", ws, *s, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    build = ("build", "polyrefuse", "--sources", str(SOURCES), "--translations", str(SAMPLE))
    run(*build)
    from pipelines.polyrefuse.pipeline import read_candidate

    stages = tmp_path / "ws" / "polyrefuse" / "stages"
    before = read_candidate(stages)["rows"].filter(pl.col("lang") == "de")
    flagged = before.filter(pl.col("flags").list.len() > 0)
    audit = -(-(before.height - flagged.height) // 100)  # ceil(1% of the unflagged)
    assert flagged.height >= 2

    refused = cf("annotate", "push", "polyrefuse", "-w", ws, "--set", f"annotation.label_studio.url={label_studio.url}", cwd=tmp_path, check=False)
    assert refused.returncode != 0 and "language 'de' (German)" in refused.stdout + refused.stderr and "no annotators" in refused.stdout + refused.stderr
    pushed = run("annotate", "push", "polyrefuse")
    assert f"{flagged.height + audit} tasks created, 0 already there" in pushed and f"de/yes {flagged.height}" in pushed
    refused = cf("annotate", "merge", "polyrefuse", "-w", ws, *s, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "build polyrefuse --corrections latest" in refused.stdout + refused.stderr
    assert f"{flagged.height + audit} simulated verdicts submitted" in run("annotate", "simulate", "polyrefuse", "--simulated")
    pulled = run("annotate", "pull", "polyrefuse")
    assert f"{flagged.height + audit} verdicts" in pulled and "Corrections: accepted" in pulled

    corrections = pl.read_parquet(next((tmp_path / "ws" / "annotation" / "polyrefuse" / "corrections").glob("*/corrections.parquet")))
    edited = corrections.filter(pl.col("status") == "edited")
    rejected = corrections.filter(pl.col("status") == "rejected")
    assert edited.height >= 1 and edited.height + rejected.height == flagged.height
    run(*build, "--corrections", "latest")
    after = read_candidate(stages)["rows"].filter(pl.col("lang") == "de")
    one = edited.row(0, named=True)
    row = after.filter(pl.col("row_id") == one["item_id"]).row(0, named=True)
    assert (row["instruction"], row["instruction_machine"], row["proofreading"]) == (one["translation_final"], one["translation_machine"], "edited")
    assert row["proofread_by"] == "anna@simulated.corpusforge.invalid" and row["proofread_at"].endswith("Z")
    assert row["instruction"] != row["instruction_machine"]
    # the items are the same after the rebuild: pushing again creates nothing
    assert "0 tasks created" in run("annotate", "push", "polyrefuse")

    run("validate", "polyrefuse")
    run("release", "polyrefuse", "--version", "0.1.0")
    release = tmp_path / "ws" / "releases" / "polyrefuse" / "0.1.0"
    from datasets import load_dataset

    de = load_dataset(str(release), "de")
    released = {r["id"]: r for split in de.values() for r in split}
    got = released[one["prompt_id"]]
    assert (got["instruction"], got["instruction_machine"], got["proofreading"]) == (one["translation_final"], one["translation_machine"], "edited")
    statuses = pl.DataFrame([{"p": r["proofreading"]} for r in released.values()]).group_by("p").len()
    assert dict(statuses.iter_rows())["edited"] == edited.height
    card = (release / "README.md").read_text()
    assert "edited" in card
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["dataset"] == "polyrefuse"


RELAIONET_SAMPLE = REPO / "pipelines" / "relaionet" / "sample"


def test_relaionet_image_proofreading_through_the_command_line(label_studio, tmp_path, monkeypatch):
    """build (sample) -> push (images written under Label Studio's document root) -> simulate with the
    sample's answer key -> pull (agreement) -> build --corrections latest -> statuses applied."""
    monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", label_studio.token)
    ws = label_studio.document_root / f"ws-{tmp_path.name}"  # the server serves local files under its document root
    s = [
        "-w", str(ws),
        "--set", f"annotation.label_studio.url={label_studio.url}",
        "--set", f"annotation.relaionet.document_root='{label_studio.document_root}'",
        "--set", "annotation.relaionet.annotators=['anna', 'ben']",
        "--set", "annotation.relaionet.double_fraction=0.25",
        "--set", 'relaionet.similarity.encoder="none"', "--set", 'relaionet.ocr.backend="none"',
    ]

    def run(*args):
        result = cf(*args, *s, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        return "".join(result.stdout.split())

    build = ("build", "relaionet", "--input", str(RELAIONET_SAMPLE / "images"))
    run(*build)
    pushed = run("annotate", "push", "relaionet")  # 19 candidates: without the similarity filter s30 stays in
    assert "19taskscreated,0alreadythere" in pushed
    assert len(list((ws / "annotation" / "media" / "relaionet").iterdir())) == 19
    run("annotate", "simulate", "relaionet", "--simulated", "--answers", str(RELAIONET_SAMPLE / "answers.jsonl"))
    pulled = run("annotate", "pull", "relaionet")
    assert "accepted17" in pulled and "relabelled1" in pulled and "unusable1" in pulled  # the key's s04 and s14, the rest confirmed
    run(*build, "--corrections", "latest")
    from pipelines.relaionet.pipeline import read_images

    rows = {r["sample_id"]: r for r in read_images(ws / "relaionet" / "stages", images=False).iter_rows(named=True)}
    assert (rows["s04"]["proofread_status"], rows["s04"]["label"], rows["s04"]["label_source"]) == ("relabelled", 282, "proofreader")
    assert (rows["s14"]["proofread_status"], rows["s14"]["unusable_reason"]) == ("unusable", "not_a_photo")
    doubles = [r for r in rows.values() if len(r["annotators"]) == 2]
    assert len(doubles) == 5  # ceil(0.25 * 19)
    assert "0taskscreated,19alreadythere" in run("annotate", "push", "relaionet")  # same items after the rebuild
