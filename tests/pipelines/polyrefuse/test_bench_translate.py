"""bench/polyrefuse_translate.py: a smoke run on the tiny models, and its imports on a bare machine.

The benchmark also runs on a GPU machine where the project is not installed and polars, pydantic,
typer, rich, pytest, great_expectations and requests are missing; the second test runs it in a
subprocess where those modules cannot be imported (``sys.modules[name] = None``, which is how an
absent module looks to both ``import`` and ``importlib.util.find_spec``) and the editable install
is taken off the import path, so only ``PYTHONPATH=.`` finds the source tree.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BENCH = REPO / "bench" / "polyrefuse_translate.py"
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how vaccines train the immune system.",
    "Write a short story about a lighthouse keeper.",  # a duplicate: prompts are distinct
    "List five fruits that are high in vitamin C.",
    "   ",  # blank: skipped
    "Describe the water cycle in three steps.",
    "Suggest a name for a bakery.",
]
BLOCKED = ("polars", "pydantic", "typer", "rich", "pytest", "great_expectations", "requests", "corpusforge")

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")


@pytest.fixture
def sources(tmp_path) -> Path:
    folder = tmp_path / "splits"
    folder.mkdir()
    (folder / "harmless_test.json").write_text(json.dumps([{"instruction": p, "category": None} for p in PROMPTS[3:]]))
    (folder / "harmful_train.json").write_text(json.dumps([{"instruction": p, "category": "x"} for p in PROMPTS[:3]]))
    return folder


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """The bench's --threads sets torch's global thread count: restore it afterwards."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _load_bench():
    spec = importlib.util.spec_from_file_location("polyrefuse_translate_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_measures_every_backend_and_batch_size(sources, tmp_path, one_torch_thread):
    pytest.importorskip("transformers")
    pytest.importorskip("sentencepiece")
    bench = _load_bench()
    out = tmp_path / "result.json"
    argv = ["--size", "tiny", "--prompts", "4", "--batch-sizes", "1,2", "--max-new-tokens", "8"]
    result = bench.main([*argv, "--sources", str(sources), "--json", str(out), "--threads", "1", "--device", "cpu"])

    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["baseline"] == "batch size 1 (one prompt per model call)"
    assert result["settings"]["prompts"] == 4
    assert [Path(f).name for f in result["settings"]["sources"]] == ["harmful_train.json", "harmless_test.json"]
    assert result["environment"]["device"] == "cpu" and result["environment"]["torch_threads"] == 1
    assert {kind: model["parameters"] > 0 for kind, model in result["models"].items()} == {
        "seq2seq": True,
        "causal": True,
    }
    rows = result["rows"]
    assert [(r["backend"], r["batch_size"]) for r in rows] == [
        ("seq2seq", 1),
        ("seq2seq", 2),
        ("causal", 1),
        ("causal", 2),
    ]
    for row in rows:
        assert row["prompts"] == 4
        assert row["seconds"] > 0 and row["prompts_per_s"] > 0 and row["output_tokens_per_s"] > 0
        assert row["cached_seconds"] > 0 and row["cached_prompts_per_s"] > 0 and row["cached_hits"] == 4
        assert row["outputs"] == row["translated"] == 4 and row["failed"] == 0  # an output for every prompt
        assert row["model_calls"] == math.ceil(4 / row["batch_size"])
        # The length is forced: every output is max_new_tokens long, whatever the batch size.
        assert row["output_tokens_min"] == row["output_tokens_max"] == 8
        assert row["speed_up"] > 0 and row["same_as_baseline"] is not None
    assert [r["speed_up"] for r in rows if r["batch_size"] == 1] == [1.0, 1.0]


def test_bench_runs_without_the_project_installed_and_without_its_cli_dependencies(sources, tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("sentencepiece")
    wrapper = f"""
import runpy, sys
BLOCKED = {BLOCKED!r}
for name in BLOCKED:
    sys.modules[name] = None  # what an absent module looks like to import and find_spec
# Not installed: drop the editable install's finders; PYTHONPATH=. must find the source tree.
sys.meta_path = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
sys.argv = ["bench/polyrefuse_translate.py", *sys.argv[1:]]
runpy.run_path("bench/polyrefuse_translate.py", run_name="__main__")
import pipelines
from pathlib import Path
print("pipelines from", Path(pipelines.__path__[0]).resolve())
"""
    env = {**os.environ, "PYTHONPATH": ".", "HF_HUB_OFFLINE": "1"}
    argv = ["--size", "tiny", "--prompts", "8", "--batch-sizes", "1,4", "--threads", "1", "--device", "cpu"]
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *argv, "--sources", str(sources), "--json", str(tmp_path / "r.json")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"pipelines from {REPO / 'pipelines'}" in done.stdout
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert len(rows) == 4 and all(r["prompts"] == 5 for r in rows)  # 5 distinct non-blank prompts exist
