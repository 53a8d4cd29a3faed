"""reLAIONet through the command line: build from the bundled sample, a release refused while
nothing is proofread, a build with corrections, validate, release (loaded with `datasets`,
verified), the per-class export, and the errors a user meets first. Proofreading through the real
Label Studio is tested in tests/annotation/test_relaionet_proofreading.py and by the demo."""

from __future__ import annotations

import csv
import json

import polars as pl

from tests.corpusforge.test_cli_polyrefuse import squeeze
from tests.corpusforge.test_cli_sad import REPO, cf

SAMPLE = REPO / "pipelines" / "relaionet" / "sample"
NO_MODEL = ["--set", "relaionet.similarity.encoder=\"none\"", "--set", "relaionet.ocr.backend=\"none\""]


def corrections_from_expected(path):
    """The corrections a proofreading pull would give, from the sample's expected outcomes."""
    expected = json.loads((SAMPLE / "expected.json").read_text(encoding="utf-8"))["samples"]
    rows = [
        {"sample_id": sid, "status": e["proofread_status"], "label": e["class_id"] if e["proofread_status"] != "unusable" else None,
         "unusable_reason": e["unusable_reason"], "annotators": ["anna"], "problem": None}
        for sid, e in expected.items() if e["outcome"] != "rejected"
    ]
    pl.DataFrame(rows, schema_overrides={"label": pl.Int64, "unusable_reason": pl.String, "problem": pl.String}).write_parquet(path)
    return {sid: e for sid, e in expected.items() if e["outcome"] == "released"}


def test_build_refuse_correct_validate_release_load_and_export(tmp_path):
    ws = tmp_path / "ws"
    s = ["-w", str(ws), *NO_MODEL]
    built = cf("build", "relaionet", "--input", str(SAMPLE / "images"), *s, cwd=REPO).stdout
    assert "waitingforproofreading:corpusforgeannotatepushrelaionet" in squeeze(built)
    refused = cf("release", "relaionet", "--version", "0.1.0", *s, cwd=REPO, check=False)
    assert refused.returncode != 0 and "noproofreadimageisacceptedyet" in squeeze(refused.stdout + refused.stderr)

    released_ids = corrections_from_expected(tmp_path / "corrections.parquet")
    cf("build", "relaionet", "--input", str(SAMPLE / "images"), "--corrections", str(tmp_path / "corrections.parquet"), *s, cwd=REPO)
    validated = cf("validate", "relaionet", *s, cwd=REPO).stdout
    assert "PASS" in validated and "left_out[unusable]1rows" in squeeze(validated)
    out = cf("release", "relaionet", "--version", "0.1.0", *s, cwd=REPO).stdout
    release = ws / "releases" / "relaionet" / "0.1.0"
    assert f"default:train{len(released_ids)}" in squeeze(out)
    assert cf("release", "verify", str(release), cwd=REPO).returncode == 0
    card = (release / "README.md").read_text(encoding="utf-8")
    assert "| 18 | 16 | 1 | 1 | 0 |" in card  # proofread, accepted, relabelled, unusable, disputed

    from datasets import load_dataset

    ds = load_dataset(str(release), "default")["train"]
    names = ds.features["label"]
    assert names.num_classes == 1000 and len(ds) == len(released_ids)
    for row in ds:
        assert names.int2str(row["label"]) == released_ids[row["sample_id"]]["class_name"]
        assert row["image"].mode == "RGB" and min(row["image"].size) >= 64

    folders = tmp_path / "folders"
    exported = cf("export", "relaionet", "--out", str(folders), "--version", "0.1.0", *s, cwd=REPO).stdout
    assert f"{len(released_ids)}images" in squeeze(exported)
    with (folders / "metadata.csv").open(encoding="utf-8") as f:
        meta = list(csv.DictReader(f))
    assert {m["sample_id"] for m in meta} == set(released_ids)
    for m in meta:
        assert (folders / m["file"]).is_file() and m["file"].split("/")[0] == m["wnid"]
    again = cf("export", "relaionet", "--out", str(folders), "--version", "0.1.0", *s, cwd=REPO, check=False)
    assert again.returncode != 0 and "Traceback" not in again.stderr


def test_input_errors_are_named(tmp_path):
    ws = ["-w", str(tmp_path / "ws")]
    proc = cf("build", "relaionet", "--input", str(tmp_path / "nope"), *ws, *NO_MODEL, cwd=REPO, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "nosuchfileorfolder" in squeeze(proc.stderr)
    proc = cf("build", "relaionet", "--input", str(SAMPLE / "images"), *ws, cwd=REPO, check=False)  # clip without a model folder
    assert proc.returncode == 2 and "needsalocalmodelfolder" in squeeze(proc.stderr) and "encoder" in proc.stderr
    proc = cf("build", "relaionet", "--input", str(SAMPLE / "images"), "--corrections", "latest", *ws, *NO_MODEL, cwd=REPO, check=False)
    assert proc.returncode != 0 and "annotatepullrelaionet" in squeeze(proc.stdout + proc.stderr)
