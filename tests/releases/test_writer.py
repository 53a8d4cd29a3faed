"""write_release: layout, round trip through `datasets`, card, manifest, byte identity, atomicity."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402

from pipelines.sad.synthetic import synthetic_candidate  # noqa: E402
from releases import (  # noqa: E402
    CardText,
    InvalidReleaseSpecError,
    ReleaseExistsError,
    ReleaseSpec,
    UnknownConfigError,
    load_release,
    read_manifest,
    verify_release,
    write_release,
)
from releases import writer  # noqa: E402
from schemas.sad import DIALOGUES, SPLITS, STRATEGIES, UTTERANCES  # noqa: E402
from schemas.table import Column, DType, Int, String, Table  # noqa: E402

datasets.disable_progress_bars()

CARD = CardText(
    title="SAD: Strategic Argumentative Dialogues",
    summary="Dialogues from r/ChangeMyView with the stance of every turn.",
    body_markdown="## Construction rules\n\n- chains alternate OP and challenger\n- at least 3 turns",
    license="other",
    license_note="Reddit content: see the Reddit terms of use.",
    citation="@misc{sad, title={SAD}}",
)
FIXED_TIME = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def sad_spec(cand: dict[str, pl.DataFrame], version: str = "0.1.0", **kw) -> ReleaseSpec:
    base = dict(
        dataset="sad",
        version=version,
        configs={"dialogues": DIALOGUES, "utterances": UTTERANCES},
        tables={"dialogues": cand["dialogues"], "utterances": cand["utterances"]},
        split_column="split",
        card=CARD,
        manifest_extra={
            "inputs": [{"path": "dump.jsonl.bz2", "sha256": "0" * 64, "bytes": 123}],
            "config": {"min_words": 10},
            "code_revision": "deadbeef",
            "validation": {"success": True, "checks": 12},
        },
    )
    base.update(kw)
    return ReleaseSpec(**base)


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cand() -> dict[str, pl.DataFrame]:
    return synthetic_candidate(n_topics=30, chains_per_topic=4, seed=1)


@pytest.fixture(scope="module")
def release(cand, tmp_path_factory) -> Path:
    return write_release(sad_spec(cand), tmp_path_factory.mktemp("rel"))


@pytest.fixture()
def hf_cache(tmp_path) -> Path:
    return tmp_path / "hf-cache"


# --------------------------------------------------------------------------- layout and round trip


def test_layout(release):
    files = sorted(p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file())
    assert release.parts[-2:] == ("sad", "0.1.0")
    assert files == sorted(
        ["README.md", "manifest.json", "checksums.sha256"]
        + [f"{c}/{s}-00000-of-00001.parquet" for c in ("dialogues", "utterances") for s in SPLITS]
    )
    assert not [p for p in release.parent.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_round_trip_load_dataset(release, cand, hf_cache):
    dd = datasets.load_dataset(str(release), "dialogues", cache_dir=str(hf_cache))
    expected = cand["dialogues"].group_by("split").len()
    assert {s: len(dd[s]) for s in dd} == dict(expected.iter_rows())
    assert list(dd) == list(SPLITS)
    feats = dd["train"].features
    assert isinstance(feats["target_stance"], datasets.ClassLabel)
    assert feats["target_stance"].names == ["oppose", "support"]
    assert isinstance(feats["target_suggested_strategies"], datasets.List)
    assert isinstance(feats["target_suggested_strategies"].feature, datasets.ClassLabel)
    assert feats["target_suggested_strategies"].feature.names == list(STRATEGIES)
    assert feats["history"].feature["stance"].names == ["oppose", "support"]
    assert feats["history"].feature["text"] == datasets.Value("string")
    assert feats == DIALOGUES.hf_features()

    # the rows themselves: same content, sorted by the primary key within each split
    got = pl.concat([dd[s].to_polars() for s in dd])
    want = DIALOGUES.conform(cand["dialogues"], released_only=True)
    for split in SPLITS:
        ids = dd[split]["example_id"]
        assert ids == sorted(ids)
    assert got.sort("example_id").equals(want.sort("example_id"))

    utt = load_release(release, "utterances", "test", cache_dir=hf_cache)
    assert len(utt) == cand["utterances"].filter(pl.col("split") == "test").height
    assert "author" not in utt.column_names  # unreleased columns stay in the workspace
    assert utt.features["speaker"].names == ["challenger", "op"]


def test_features_come_from_card_alone(release, tmp_path, hf_cache):
    """The card's dataset_info restores the features even from parquet without HF metadata."""
    import pyarrow.parquet as pq

    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    for p in (copy / "dialogues").glob("*.parquet"):
        t = pq.read_table(p)
        os.chmod(p, 0o644)
        pq.write_table(t.replace_schema_metadata(None), p)
    dd = datasets.load_dataset(str(copy), "dialogues", cache_dir=str(hf_cache))
    assert dd["train"].features == DIALOGUES.hf_features()


def test_load_release_unknown_config_names_the_available_ones(release):
    with pytest.raises(UnknownConfigError, match="available configs: dialogues, utterances"):
        load_release(release, "topics")
    with pytest.raises(UnknownConfigError, match="available splits: train, validation, test"):
        load_release(release, "dialogues", "dev")


# --------------------------------------------------------------------------- card, manifest, checksums


def _front_matter(release: Path) -> tuple[dict, str]:
    text = (release / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def test_card(release, cand):
    meta, body = _front_matter(release)
    assert meta["license"] == "other" and meta["pretty_name"] == CARD.title
    assert meta["configs"][0] == {
        "config_name": "dialogues",
        "data_files": [{"split": s, "path": f"dialogues/{s}-*.parquet"} for s in SPLITS],
    }
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert set(infos) == {"dialogues", "utterances"}
    n = dict(cand["dialogues"].group_by("split").len().iter_rows())
    assert {s["name"]: s["num_examples"] for s in infos["dialogues"]["splits"]} == n
    stance = next(f for f in infos["dialogues"]["features"] if f["name"] == "target_stance")
    assert stance["dtype"]["class_label"]["names"] == {"0": "oppose", "1": "support"}
    for part in (CARD.title, CARD.summary, "Construction rules", CARD.license_note, 'load_dataset("sad/0.1.0", "dialogues")'):
        assert part in body
    assert f"| dialogues | train | {n['train']:,} | 1 |" in body
    assert "@misc{sad" in body
    assert str(release.parent.parent) not in body  # no absolute path: same bytes wherever written


def test_manifest_and_checksums(release, cand):
    m = read_manifest(release)
    assert (m["dataset"], m["version"]) == ("sad", "0.1.0")
    datetime.strptime(m["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert m["configs"]["dialogues"]["primary_key"] == "example_id"
    assert m["configs"]["utterances"]["primary_key"] == "utterance_id"
    assert m["configs"]["dialogues"]["splits"] == {
        s: cand["dialogues"].filter(pl.col("split") == s).height for s in SPLITS
    }
    assert m["code_revision"] == "deadbeef" and m["validation"]["success"] is True
    assert m["inputs"][0]["bytes"] == 123 and m["config"] == {"min_words": 10}
    data_files = [f"{c}/{s}-00000-of-00001.parquet" for c in ("dialogues", "utterances") for s in SPLITS]
    assert set(m["files"]) == set(data_files) | {"README.md"}
    for rel, rec in m["files"].items():
        assert rec == {"sha256": hashlib.sha256((release / rel).read_bytes()).hexdigest(), "bytes": (release / rel).stat().st_size}

    lines = (release / "checksums.sha256").read_text().splitlines()
    listed = {line.split("  ", 1)[1] for line in lines}
    assert listed == set(data_files) | {"README.md", "manifest.json"}
    if shutil.which("sha256sum"):
        proc = subprocess.run(["sha256sum", "-c", "checksums.sha256"], cwd=release, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert verify_release(release).ok


# --------------------------------------------------------------------------- determinism


def test_byte_identical_rebuild(cand, tmp_path):
    a = write_release(sad_spec(cand), tmp_path / "a")
    shuffled = {k: v.sample(fraction=1.0, shuffle=True, seed=7) for k, v in cand.items()}
    b = write_release(sad_spec(shuffled), tmp_path / "b")
    ha, hb = tree_hashes(a), tree_hashes(b)
    assert ha.keys() == hb.keys()
    differing = sorted(k for k in ha if ha[k] != hb[k])
    assert set(differing) <= {"manifest.json", "checksums.sha256"}  # created_at only
    assert [k for k in ha if k.endswith(".parquet") or k == "README.md"]
    c = write_release(sad_spec(cand), tmp_path / "c", created_at=FIXED_TIME)
    d = write_release(sad_spec(shuffled), tmp_path / "d", created_at=FIXED_TIME)
    assert tree_hashes(c) == tree_hashes(d)
    assert read_manifest(c)["created_at"] == "2025-01-02T03:04:05Z"


# --------------------------------------------------------------------------- immutability and atomicity


def test_existing_version_is_refused_and_untouched(release, cand):
    before = tree_hashes(release)
    with pytest.raises(ReleaseExistsError) as err:
        write_release(sad_spec(cand), release.parent.parent)
    msg = str(err.value)
    assert "immutable" in msg and "--bump" in msg and "0.1.1" in msg
    assert err.value.suggested_version == "0.1.1"
    assert tree_hashes(release) == before
    assert not [p for p in release.parent.iterdir() if p.name.startswith(".")]


def test_crash_mid_write_leaves_nothing_and_rerun_succeeds(cand, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = writer._write_parquet_file

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "_write_parquet_file", flaky)
    with pytest.raises(OSError, match="simulated"):
        write_release(sad_spec(cand), tmp_path)
    assert calls["n"] == 3
    assert list((tmp_path / "sad").iterdir()) == []  # neither the version nor its temp dir

    monkeypatch.setattr(writer, "_write_parquet_file", real)
    out = write_release(sad_spec(cand), tmp_path)
    assert out == tmp_path / "sad" / "0.1.0" and verify_release(out).ok


def test_stale_temp_dirs_are_cleaned(cand, tmp_path):
    ds_dir = tmp_path / "sad"
    ds_dir.mkdir()
    dead = ds_dir / f".0.1.0.tmp-{writer._host_tag()}-999999999-abcd1234"  # pid that cannot exist
    old = ds_dir / ".0.0.9.tmp-otherhost-1-ffff0000"
    fresh_other = ds_dir / ".0.2.0.tmp-otherhost-1-eeee0000"  # may still be running elsewhere
    for d in (dead, old, fresh_other):
        d.mkdir()
        (d / "partial.parquet").write_bytes(b"x")
    os.utime(old, (0, 0))
    write_release(sad_spec(cand), tmp_path)
    assert not dead.exists() and not old.exists() and fresh_other.exists()


# --------------------------------------------------------------------------- refused specs


@pytest.mark.parametrize("dataset", ["../evil", "sad/../../x", "", "Sad", "-sad", ".sad", "sad/x", "/abs"])
def test_bad_dataset_names_are_refused(cand, tmp_path, dataset):
    with pytest.raises(InvalidReleaseSpecError, match="dataset name"):
        write_release(sad_spec(cand, dataset=dataset), tmp_path / "root")
    assert not (tmp_path / "root").exists() and sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", ["0.1", "../0.1.0", "0.1.0/../../x", "01.0.0", "1.0.0-rc1", "v1.0.0", "1.0.0 "])
def test_bad_versions_are_refused(cand, tmp_path, version):
    with pytest.raises(InvalidReleaseSpecError, match="version"):
        write_release(sad_spec(cand, version=version), tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_bad_config_names_are_refused(cand, tmp_path):
    spec = sad_spec(cand, configs={"../x": DIALOGUES}, tables={"../x": cand["dialogues"]})
    with pytest.raises(InvalidReleaseSpecError, match="config name"):
        write_release(spec, tmp_path)


def test_data_problems_are_refused_before_anything_is_published(cand, tmp_path):
    cand = {k: cand[k] for k in ("dialogues", "utterances")}
    dup = cand["dialogues"].vstack(cand["dialogues"].head(2))
    with pytest.raises(InvalidReleaseSpecError, match="not unique"):
        write_release(sad_spec(cand, tables={**cand, "dialogues": dup}), tmp_path)
    bad_label = cand["dialogues"].with_columns(pl.lit(2, dtype=pl.Int64).alias("target_stance"))
    with pytest.raises(InvalidReleaseSpecError, match="target_stance"):
        write_release(sad_spec(cand, tables={**cand, "dialogues": bad_label}), tmp_path)
    bad_nested = cand["dialogues"].with_columns(
        pl.col("history").list.eval(pl.struct(pl.lit(7, dtype=pl.Int64).alias("stance"), pl.element().struct.field("text")))
    )
    with pytest.raises(InvalidReleaseSpecError, match=r"history\[\]\.stance"):
        write_release(sad_spec(cand, tables={**cand, "dialogues": bad_nested}), tmp_path)
    with pytest.raises(InvalidReleaseSpecError, match="lacks released columns"):
        write_release(sad_spec(cand, tables={**cand, "dialogues": cand["dialogues"].drop("topic")}), tmp_path)
    bad_split = cand["dialogues"].with_columns(pl.lit("dev-1").alias("split"))
    with pytest.raises(InvalidReleaseSpecError, match="invalid split names"):
        write_release(sad_spec(cand, tables={**cand, "dialogues": bad_split}), tmp_path)
    with pytest.raises(InvalidReleaseSpecError, match="manifest_extra may not set"):
        write_release(sad_spec(cand, manifest_extra={"files": {}}), tmp_path)
    with pytest.raises(InvalidReleaseSpecError, match="tables without a config"):
        write_release(sad_spec(cand, tables={**cand, "topics": cand["dialogues"]}), tmp_path)
    assert not (tmp_path / "sad").exists() or list((tmp_path / "sad").iterdir()) == []


# --------------------------------------------------------------------------- other shapes of datasets


def test_sharding_and_single_split(cand, tmp_path, hf_cache):
    spec = sad_spec(cand, configs={"all": UTTERANCES}, tables={"all": cand["utterances"]}, split_column=None, max_rows_per_file=100)
    out = write_release(spec, tmp_path)
    n = cand["utterances"].height
    shards = sorted(p.name for p in (out / "all").glob("*.parquet"))
    k = -(-n // 100)
    assert shards == [f"train-{i:05d}-of-{k:05d}.parquet" for i in range(k)]
    ds = load_release(out, "all", "train", cache_dir=hf_cache)
    assert len(ds) == n
    ids = ds["utterance_id"]
    assert ids == sorted(ids)  # sorted across shards too
    assert read_manifest(out)["configs"]["all"]["splits"] == {"train": n}
    # one config: `load_dataset(folder)` needs no config name
    assert datasets.load_dataset(str(out), split="train", cache_dir=str(hf_cache)).num_rows == n


class _ImageBytes(DType):
    """An image column as `datasets` stores it: {bytes, path}; a stand-in for reLAIONet."""

    def polars(self):
        return pl.Struct({"bytes": pl.Binary(), "path": pl.String()})

    def hf(self):
        return datasets.Image()


def test_per_language_configs_and_an_image_column(tmp_path, hf_cache):
    table = Table(
        name="images",
        primary_key="id",
        columns=(
            Column("id", String(), "Id."),
            Column("image", _ImageBytes(), "The image."),
            Column("label", Int(32), "A number."),
        ),
    )
    frames = {
        lang: pl.DataFrame(
            {
                "id": [f"{lang}{i}" for i in range(5)],
                "image": [{"bytes": f"img-{lang}-{i}".encode(), "path": f"{i}.png"} for i in range(5)],
                "label": list(range(5)),
            },
            schema=table.polars_schema(),
        )
        for lang in ("en", "zh-Hans")
    }
    spec = ReleaseSpec(
        dataset="polyrefuse-test",
        version="1.0.0",
        configs={lang: table for lang in frames},
        tables=frames,
        split_column=None,
        card=CardText(title="t", summary="s", metadata={"language": ["en", "zh"]}),
    )
    out = write_release(spec, tmp_path)
    meta, _ = _front_matter(out)
    assert meta["language"] == ["en", "zh"]
    ds = load_release(out, "zh-Hans", "train", cache_dir=hf_cache)
    assert isinstance(ds.features["image"], datasets.Image)
    raw = ds.cast_column("image", datasets.Image(decode=False))
    assert raw[0]["image"]["bytes"] == b"img-zh-Hans-0"
