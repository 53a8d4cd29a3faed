"""MMHM: hand-computed scores, degenerate bounds, reused bounds, the picks, bad CSVs and the command."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from experiments.common import ExperimentError
from experiments.mmhm import Bounds, best_settings, load_bounds, read_results, run_mmhm, save_bounds, score_mmhm
from tests.corpusforge.test_cli_sad import REPO, cf

HEADER = "model,guidance,steps,FID,IS,CLIP,PickScore"
# Bounds over these rows: FID 10..20, IS 30..40, CLIP 20..30, PickScore 20..22.
THREE_ROWS = [
    "A,3,20,10,30,25,20",    # u = FID 1,   IS 0,   CLIP 0.5, PickScore 0
    "A,7.5,20,20,40,30,22",  # u = FID 0,   IS 1,   CLIP 1,   PickScore 1
    "B,5,50,15,35,20,21",    # u = FID 0.5, IS 0.5, CLIP 0,   PickScore 0.5
]
# S = 4 / sum 1/(0.001 + u), written out by hand.
EXPECTED = [
    4 / (1 / 1.001 + 1 / 0.001 + 1 / 0.501 + 1 / 0.001),
    4 / (1 / 0.001 + 1 / 1.001 + 1 / 1.001 + 1 / 1.001),
    4 / (1 / 0.501 + 1 / 0.501 + 1 / 0.001 + 1 / 0.501),
]


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_hand_computed_table(tmp_path):
    frame = read_results(write_csv(tmp_path / "r.csv", THREE_ROWS))
    scored = score_mmhm(frame)
    assert scored["u_FID"].to_list() == pytest.approx([1.0, 0.0, 0.5])
    assert scored["u_IS"].to_list() == pytest.approx([0.0, 1.0, 0.5])
    assert scored["u_CLIP"].to_list() == pytest.approx([0.5, 1.0, 0.0])
    assert scored["u_PickScore"].to_list() == pytest.approx([0.0, 1.0, 0.5])
    assert scored["mmhm"].to_list() == pytest.approx(EXPECTED, rel=1e-12)
    assert pytest.approx(0.0019970, abs=1e-7) == scored["mmhm"][0]  # 4 / 2002.995...
    assert frame.schema["steps"] == pl.Int64 and frame.schema["guidance"] == pl.Float64


def test_max_equal_min_gives_u_one(tmp_path):
    rows = ["A,3,20,10,30,25,21", "A,7.5,20,20,40,30,21"]  # PickScore constant
    scored = score_mmhm(read_results(write_csv(tmp_path / "r.csv", rows)))
    assert scored["u_PickScore"].to_list() == [1.0, 1.0]
    assert scored["mmhm"].to_list() == pytest.approx([4 / (1 / 1.001 + 1 / 0.001 + 1 / 0.001 + 1 / 1.001),
                                                     4 / (1 / 0.001 + 1 / 1.001 + 1 / 1.001 + 1 / 1.001)])
    single = score_mmhm(read_results(write_csv(tmp_path / "one.csv", ["A,3,20,10,30,25,21"])))
    assert single["mmhm"].to_list() == pytest.approx([1.001])  # every metric degenerate: 4 / (4 / 1.001)


def test_reused_bounds_leave_unit_interval(tmp_path):
    bounds = Bounds.fit(read_results(write_csv(tmp_path / "fit.csv", THREE_ROWS)), source="fit.csv")
    path = save_bounds(bounds, tmp_path / "bounds.json")
    again = load_bounds(path)
    assert again.low == bounds.low and again.high == bounds.high and again.source == "fit.csv"
    other = read_results(write_csv(tmp_path / "other.csv", ["A,3,20,5,45,30,21", "B,5,50,25,25,20,20"]))
    scored = score_mmhm(other, again)
    assert scored["u_FID"].to_list() == pytest.approx([1.5, -0.5])
    assert scored["u_IS"].to_list() == pytest.approx([1.5, -0.5])
    assert scored["u_CLIP"].to_list() == pytest.approx([1.0, 0.0])
    assert scored["mmhm"][0] == pytest.approx(4 / (1 / 1.501 + 1 / 1.501 + 1 / 1.001 + 1 / 0.501))
    # fitted on the other set itself, everything is back in [0, 1]
    own = score_mmhm(other)
    assert own.select(pl.col("^u_.*$")).to_numpy().min() >= 0 and own.select(pl.col("^u_.*$")).to_numpy().max() <= 1


def test_best_per_model_versus_best_by_fid(tmp_path):
    best = best_settings(score_mmhm(read_results(write_csv(tmp_path / "r.csv", THREE_ROWS)))).to_dicts()
    a, b = best
    assert (a["model"], a["guidance_mmhm"], a["steps_mmhm"]) == ("A", 7.5, 20)  # higher S despite the worst FID
    assert (a["guidance_fid"], a["steps_fid"], a["FID_fid"]) == (3.0, 20, 10.0)
    assert a["agree"] is False and a["mmhm_mmhm"] == pytest.approx(EXPECTED[1])
    assert (b["model"], b["guidance_mmhm"], b["guidance_fid"], b["agree"]) == ("B", 5.0, 5.0, True)


@pytest.mark.parametrize(("rows", "header", "expected"), [
    (THREE_ROWS, "model,guidance,steps,FID,IS,CLIP", ["line 1", "PickScore", "needs the columns"]),
    (["A,3,20,10,abc,25,20"], HEADER, ["line 2", "'IS'", "'abc' is not a number"]),
    (["A,3,20,10,30,25,20", "A,4,20,nan,30,25,20"], HEADER, ["line 3", "'FID'", "not a finite number"]),
    (["A,3,20,10,30,,20"], HEADER, ["line 2", "'CLIP'", "empty"]),
    (["A,3,20,10,30,25,20", "B,3,20,11,31,25,20", "A,3.0,20,12,30,25,20"], HEADER,
     ["lines 2 and 4", "repeated setting", "model='A'", "one row per (model, guidance, steps)"]),
    (["A,3,20.5,10,30,25,20"], HEADER, ["line 2", "'steps'", "not a whole number"]),
    (["A,3,20,10,30,25"], HEADER, ["line 2", "6 fields", "header has 7"]),
    ([], HEADER, ["no rows below the header"]),
])
def test_bad_csvs_name_file_line_column_and_fix(tmp_path, rows, header, expected):
    path = write_csv(tmp_path / "bad.csv", rows, header)
    with pytest.raises(ExperimentError) as info:
        read_results(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_bad_bounds_file(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"metrics": {"FID": {"min": 1, "max": 2}}}))
    with pytest.raises(ExperimentError, match="'IS' needs numeric 'min' and 'max'"):
        load_bounds(tmp_path / "b.json")
    with pytest.raises(ExperimentError, match="does not exist"):
        load_bounds(tmp_path / "missing.json")


def test_run_writes_the_folder(tmp_path):
    metrics = run_mmhm(write_csv(tmp_path / "r.csv", THREE_ROWS), tmp_path / "run")
    assert metrics["best_by_mmhm"]["A"]["guidance"] == 7.5 and metrics["best_by_fid"]["A"]["guidance"] == 3.0
    assert metrics["agree"] == {"A": False, "B": True} and metrics["u_outside_unit_interval"] == 0
    assert not (tmp_path / "run" / "bounds.json").exists()  # only with save_bounds_file


def test_cli_end_to_end(tmp_path):
    fit = write_csv(tmp_path / "fit.csv", [f"{r},x" for r in THREE_ROWS], header=HEADER + ",note")
    out = tmp_path / "run"
    proc = cf("experiment", "mmhm", "--results", str(fit), "--out", str(out), "--save-bounds", cwd=REPO)
    assert "A: MMHM picks guidance 7.5, 20 steps" in one_line(proc.stdout)
    table = pl.read_csv(out / "mmhm.csv")
    assert table.columns == [*HEADER.split(","), "note", "mmhm"]
    assert table["mmhm"].to_list() == pytest.approx(EXPECTED, rel=1e-9)
    for name in ("bounds.json", "metrics.json", "config.json", "report.md", "plots/sweep.png",
                 "tables/normalised.csv", "tables/best.csv"):
        assert (out / name).is_file(), name
    assert (out / "plots" / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| A | 7.5, 20 |" in report and "| 3, 20 |" in report
    assert json.loads((out / "metrics.json").read_text())["best_by_fid"]["A"]["steps"] == 20

    # reuse the bounds on another evaluation set
    other = write_csv(tmp_path / "other.csv", ["A,3,20,5,45,30,21", "B,5,50,25,25,20,20"])
    cf("experiment", "mmhm", "--results", str(other), "--out", str(tmp_path / "run2"), "--bounds", str(out / "bounds.json"), cwd=REPO)
    metrics = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    assert metrics["bounds"] == "reused" and metrics["u_outside_unit_interval"] == 2
    assert "reused" in (tmp_path / "run2" / "report.md").read_text()

    # a bad file: exit code 2, the message, no traceback
    bad = write_csv(tmp_path / "bad.csv", ["A,3,20,10,abc,25,20"])
    proc = cf("experiment", "mmhm", "--results", str(bad), "--out", str(tmp_path / "run3"), cwd=REPO, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'abc' is not a number" in one_line(proc.stderr)
