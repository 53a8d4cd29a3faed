"""Every case of the bad-input corpus (tests/badinputs/cases.py) through the real command line.

Per case: no traceback, the expected outcome (kept / rejected with the reasons / a clear error
with exit code 2), every reject counted in its step's ``_stats.json``, the good records in the
output, within a time limit; bombs run under an address-space limit. A table of the outcomes is
written to the session's temporary folder (``bad-inputs.md``; summarised in docs/bad-input.md).
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import polars as pl
import pytest

from tests.badinputs.cases import CASES, Case
from tests.corpusforge.test_cli_sad import REPO, cf
from tests.corpusforge.test_cli_polyrefuse import squeeze

BOMB_HEADROOM = 3 << 30  # bytes of address space a bomb case may add to what the process has
DATASET = {"sad": "sad", "polyrefuse": "polyrefuse", "facts": "facts", "relaionet": "relaionet"}
# Where the good records must arrive: (step, output, id column).
GOOD_AT = {"sad": ("ingest", "nodes", "node_id"), "polyrefuse": ("import", "prompts", "instruction_en"),
           "facts": ("facts", "facts", None), "relaionet": ("samples", "meta", "sample_id")}
_TABLE: list[tuple[Case, str, float]] = []


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("badinputs-report")
    yield folder
    lines = ["| case | pipeline | input | expected | observed | s |", "|---|---|---|---|---|---|"]
    for case, observed, seconds in _TABLE:
        expected = case.outcome + (f" {case.reasons}" if case.reasons else "") + (f" '{case.error}'" if case.error else "")
        cells = (case.id, case.pipeline, case.what, expected, observed, f"{seconds:.1f}")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    (folder / "bad-inputs.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\nbad-input table: {folder / 'bad-inputs.md'}")


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _run(case: Case, folder: Path) -> tuple:
    built = case.build(folder, __import__("random").Random(case.id))
    ws = folder / "ws"
    args = [*built.args, "--workspace", str(ws), "--set", "executor.workers=1"]  # in-process: spawning costs more than these tiny inputs
    if not case.bomb:
        return built, ws, cf(*args, cwd=REPO, check=False)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + BOMB_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        return built, ws, cf(*args, cwd=REPO, check=False)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _stage_steps(stages: Path) -> list[Path]:
    return sorted(p for p in stages.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "_stats.json").exists()) if stages.is_dir() else []


def _rejects(step: Path) -> pl.DataFrame:
    files = sorted((step / "_rejects").glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed") if files else pl.DataFrame()


def _output(step: Path, output: str) -> pl.DataFrame:
    files = sorted((step / output).rglob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed") if files else pl.DataFrame()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, table) -> None:
    start = time.monotonic()
    built, ws, proc = _run(case, tmp_path)
    seconds = time.monotonic() - start
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-4000:]
    stages = ws / DATASET[case.pipeline] / "stages"

    if case.outcome == "error":
        assert proc.returncode == 2, out[-3000:]
        assert squeeze(case.error) in squeeze(out), out[-3000:]
        message = " ".join(proc.stderr.split()).replace(str(tmp_path) + "/", "")
        _TABLE.append((case, f"exit 2: {message[message.find('error:'):][:200]}", seconds))
        return
    assert proc.returncode == 0, out[-3000:]

    # every reject is counted in its step's stats, and the reasons are the expected ones
    reasons: dict[str, int] = {}
    all_rejects = []
    counters: dict[str, int] = {}
    for step in _stage_steps(stages):
        stats = json.loads((step / "_stats.json").read_text())
        rejects = _rejects(step)
        found = dict(rejects.group_by("drop_reason").len().iter_rows()) if rejects.height else {}
        assert found == {k: v for k, v in (stats.get("dropped") or {}).items() if v}, (step.name, found, stats.get("dropped"))
        for k, v in found.items():
            reasons[k] = reasons.get(k, 0) + v
        for k, v in (stats.get("counters") or {}).items():
            counters[k] = counters.get(k, 0) + v if isinstance(v, int) else v
        if rejects.height:
            all_rejects.append(rejects)
    assert reasons == case.reasons, (reasons, pl.concat(all_rejects, how="diagonal_relaxed").select("drop_reason", "detail") if all_rejects else None)
    if case.record:
        rej = pl.concat(all_rejects, how="diagonal_relaxed")
        blob = [" ".join(str(r.get(k) or "") for k in ("record_id", "detail", "raw", "source_file")) for r in rej.iter_rows(named=True)]
        assert any(case.record in b for b in blob), (case.record, blob)
    if case.line is not None:
        assert case.line in pl.concat(all_rejects, how="diagonal_relaxed")["line"].to_list()
    for name, least in case.counters.items():
        assert counters.get(name, 0) >= least, (name, counters)

    # nothing good lost
    step_name, output, column = GOOD_AT[case.pipeline]
    if case.pipeline == "facts":
        facts = _output(stages / "facts", "facts")
        assert {f"{l}:{i}" for l, i in facts.select("lang", "index").iter_rows()} == built.good
        counts = _output(stages / "merge" if (stages / "merge").is_dir() else _stage_steps(stages)[-1], "counts")
        paris = counts.join(facts.select("fact_id", "lang", "index"), on="fact_id").filter((pl.col("lang") == "en") & (pl.col("index") == 1))
        assert paris["cooccurrence_docs"].to_list() == [built.good_docs], paris
    else:
        kept = set(_output(stages / step_name, output)[column].to_list())
        assert built.good <= kept, built.good - kept
    _TABLE.append((case, f"{case.outcome} {reasons or ''}".strip(), seconds))


def test_the_corpus_is_large_and_covers_every_pipeline() -> None:
    per = {p: sum(c.pipeline == p for c in CASES) for p in DATASET}
    assert len(CASES) >= 50 and min(per.values()) >= 10, per
    assert {c.outcome for c in CASES} == {"kept", "rejected", "error"}


def test_wrong_typed_nested_fields_are_bad_records_not_a_crash() -> None:
    """parse_ndjson with struct and list fields (no pipeline's dump schema has one yet)."""
    import pyarrow as pa

    from pipelines.core.readers import LineChunk, parse_ndjson

    schema = pa.schema([("id", pa.string()), ("meta", pa.struct([("step", pa.int64())])), ("tags", pa.list_(pa.string()))])
    lines = [
        '{"id": "a", "meta": {"step": 1}, "tags": ["x"]}',
        '{"id": "b", "meta": "not an object", "tags": ["x"]}',
        '{"id": "c", "meta": {"step": "many"}, "tags": ["x"]}',
        '{"id": "d", "meta": {"step": 2}, "tags": "x"}',
        '{"id": "e", "meta": {"step": 3}, "tags": [1, 2]}',
        '{"id": "f", "meta": {"step": 99999999999999999999999}, "tags": []}',
        '{"id": "g"}',
    ]
    data = "".join(line + "\n" for line in lines).encode()
    parsed = parse_ndjson(LineChunk(data, 1, len(lines)), schema)
    assert parsed.table.column("id").to_pylist() == ["a", "g"]
    assert [(b.line, b.reason) for b in parsed.bad] == [(2, "wrong_type"), (3, "wrong_type"), (4, "wrong_type"), (5, "wrong_type"), (6, "wrong_type")]
    assert all("field 'meta'" in b.detail or "field 'tags'" in b.detail for b in parsed.bad)
