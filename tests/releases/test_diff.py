"""diff_releases: exactly the rows added, removed and changed, by primary key."""

from __future__ import annotations

import os

import polars as pl
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from pipelines.sad.synthetic import synthetic_candidate  # noqa: E402
from releases import CardText, ReleaseSpec, diff_releases, write_release  # noqa: E402
from schemas.sad import DIALOGUES, UTTERANCES  # noqa: E402


def _spec(version: str, dialogues: pl.DataFrame, utterances: pl.DataFrame, **kw) -> ReleaseSpec:
    configs = kw.pop("configs", {"dialogues": DIALOGUES, "utterances": UTTERANCES})
    tables = kw.pop("tables", {"dialogues": dialogues, "utterances": utterances})
    return ReleaseSpec(dataset="sad", version=version, configs=configs, tables=tables, card=CardText(title="SAD", summary="t"), **kw)


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("diff")
    cand = synthetic_candidate(n_topics=25, chains_per_topic=4, seed=3)
    d, u = cand["dialogues"], cand["utterances"]
    a = write_release(_spec("0.1.0", d, u), root)

    ids = d["example_id"].sort().to_list()
    removed = [ids[3], ids[40]]
    modified = ids[10]
    new_row = d.filter(pl.col("example_id") == ids[0]).with_columns(pl.lit("t1_zz_new").alias("example_id"))
    d2 = (
        d.filter(~pl.col("example_id").is_in(removed))
        .with_columns(
            pl.when(pl.col("example_id") == modified)
            .then(pl.col("target_text") + " (edited)")
            .otherwise(pl.col("target_text"))
            .alias("target_text")
        )
        .vstack(new_row)
        .sample(fraction=1.0, shuffle=True, seed=1)  # input order must not matter
    )
    b = write_release(_spec("0.1.1", d2, u), root)
    return a, b, {"removed": sorted(removed), "modified": modified, "added": "t1_zz_new"}


def test_diff_reports_exactly_the_known_change(two_releases):
    a, b, known = two_releases
    report = diff_releases(a, b)
    dia = report.configs["dialogues"]
    assert dia.added == [known["added"]]
    assert dia.removed == known["removed"]
    assert dia.changed == [known["modified"]]
    assert dia.changed_columns == {"target_text": 1}
    assert dia.rows_b == dia.rows_a - 1
    assert report.configs["utterances"].identical
    assert not report.identical

    d = report.to_dict()
    assert d["a"]["version"] == "0.1.0" and d["b"]["version"] == "0.1.1"
    assert d["configs"]["dialogues"]["counts"] == {"added": 1, "removed": 2, "changed": 1}
    assert d["configs"]["dialogues"]["removed"] == known["removed"]
    assert d["configs"]["utterances"]["counts"] == {"added": 0, "removed": 0, "changed": 0}

    text = report.render_text()
    assert "+1 added, -2 removed, ~1 changed" in text
    for i in known["removed"] + [known["modified"], known["added"]]:
        assert i in text


def test_diff_of_a_release_with_itself_is_empty(two_releases):
    a, _, _ = two_releases
    report = diff_releases(a, a)
    assert report.identical
    assert all(not (c.added or c.removed or c.changed) for c in report.configs.values())


def test_render_text_truncates_ids(two_releases):
    a, b, _ = two_releases
    text = diff_releases(b, a).render_text(max_ids=1)  # reversed: 2 added, 1 removed
    assert "(+1 more)" in text


def test_config_added_or_removed(tmp_path):
    cand = synthetic_candidate(n_topics=5, chains_per_topic=2, seed=4)
    d, u = cand["dialogues"], cand["utterances"]
    a = write_release(_spec("0.1.0", d, u), tmp_path)
    b = write_release(_spec("0.2.0", d, u, configs={"dialogues": DIALOGUES}, tables={"dialogues": d}), tmp_path)
    report = diff_releases(a, b)
    assert report.configs["utterances"].presence == "only_a"
    assert report.configs["utterances"].removed == sorted(u["utterance_id"].to_list())
    assert report.configs["dialogues"].identical
    back = diff_releases(b, a)
    assert back.configs["utterances"].presence == "only_b" and len(back.configs["utterances"].added) == u.height
    assert "config added" in back.render_text()


def test_column_type_change_with_equal_values_is_not_a_row_change(tmp_path):
    from schemas.table import Column, Int, String, Table

    def table(bits: int) -> Table:
        return Table(name="t", primary_key="id", columns=(Column("id", String()), Column("n", Int(bits))))

    rows = {"id": ["a", "b", "c"], "n": [1, 2, 3]}
    a = write_release(
        _spec("0.1.0", None, None, configs={"all": table(32)}, tables={"all": pl.DataFrame(rows)}, split_column=None), tmp_path
    )
    changed = {"id": ["a", "b", "c"], "n": [1, 2, 4]}
    b = write_release(
        _spec("0.2.0", None, None, configs={"all": table(64)}, tables={"all": pl.DataFrame(changed)}, split_column=None), tmp_path
    )
    c = diff_releases(a, b).configs["all"]
    assert c.columns_retyped == ["n"] and c.changed == ["c"] and c.changed_columns == {"n": 1}
