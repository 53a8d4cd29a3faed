"""The labelling loop through the command line against the real server, ending in release 0.2.0."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SAD_SAMPLE
from tests.corpusforge.test_cli_sad import cf

pytestmark = pytest.mark.slow


def test_push_simulate_pull_merge_adjudicate_train_rebuild_release(label_studio, tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", label_studio.token)
    ws = str(tmp_path / "ws")
    s = ["--set", f"annotation.label_studio.url={label_studio.url}", "--set", "annotation.sad.annotators=['ann1','ann2','ann3']"]

    def run(*args):
        result = cf(*args, "-w", ws, *s, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    cf("build", "sad", "--input", str(SAD_SAMPLE / "reddit"), "-w", ws, cwd=tmp_path)
    from pipelines.sad.pipeline import read_candidate

    examples = sorted(read_candidate(tmp_path / "ws" / "sad" / "stages")["dialogues"]["example_id"].to_list())
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"item_id": i, "answers": {"strategies": ["Example"], "stance": "oppose"}}) + "\n" for i in examples[:2]))
    s += ["--set", f"annotation.sad.gold_file='{gold}'", "--set", "annotation.sad.gold_fraction=0.1"]
    assert "traceback" not in (refused := cf("annotate", "push", "sad", "-w", ws, "--set", "annotation.label_studio.url=http://127.0.0.1:9", cwd=tmp_path, check=False)).stderr.lower()
    assert refused.returncode == 2 and "not running at http://127.0.0.1:9" in refused.stdout + refused.stderr
    assert "20 tasks created, 0 already there, 2 gold" in run("annotate", "push", "sad", "--sample-size", "18")
    assert "0 tasks created, 20 already there" in run("annotate", "push", "sad", "--sample-size", "18")  # idempotent
    refused = cf("annotate", "simulate", "sad", "-w", ws, *s, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "--simulated" in refused.stdout + refused.stderr
    assert "60 simulated annotations submitted by ann1, ann2, ann3" in run("annotate", "simulate", "sad", "--simulated", "--noise", "0.2")
    pulled = run("annotate", "pull", "sad")
    assert "20 tasks, 60 judgments (new 60" in pulled and "Agreement report:" in pulled
    agreement = run("annotate", "agreement", "sad")
    gold_table = agreement.split("## Accuracy on gold items")[1]
    for who in ("ann1", "ann2", "ann3"):  # every annotator met both gold items
        assert f"| {who}@simulated.corpusforge.invalid | strategies | 2 |" in gold_table, gold_table
    assert "label set (MASI)" in agreement
    strict = ("--set", "annotation.sad.min_agreement=0.95")  # any disagreement goes to adjudication
    merged = run("annotate", "merge", "sad", *strict)
    queued = int(merged.split(" items need adjudication")[0].split()[-1]) if "need adjudication" in merged else 0
    assert queued > 0, merged
    assert f"{queued} queued items; {queued} new adjudication tasks" in run("annotate", "adjudicate", "sad")
    run("annotate", "simulate", "sad", "--simulated", "--adjudicator")
    assert f"{queued} decisions" in run("annotate", "adjudicate", "sad", "--pull")
    assert "queued 0" in run("annotate", "merge", "sad", *strict)
    trained = run("annotate", "train", "sad")
    assert "| strategy | rules P |" in trained and "spacy-textcat-" in trained
    model = trained.split("spacy-textcat-")[1][:8]
    # the classifier pre-annotates the rest
    assert "12 tasks created, 20 already there" in run("annotate", "push", "sad", "--all", "--preannotator", "model")
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.token, max_retries=0)
    state = json.loads((tmp_path / "ws" / "annotation" / "sad" / "label-studio" / "project.json").read_text())
    versions = [p.model_version for t in client.tasks.list(project=state["project_id"]) for p in client.predictions.list(task=t.id)]
    assert versions.count(f"spacy-textcat-{model}") == 12 and versions.count("rules:sad-cues-v1") == 20

    run("build", "sad", "--input", str(SAD_SAMPLE / "reddit"), "--labels", "latest")
    run("release", "sad", "--version", "0.2.0")
    release = tmp_path / "ws" / "releases" / "sad" / "0.2.0"
    manifest = json.loads((release / "manifest.json").read_text())
    human = manifest["human_labels"]
    assert human["utterances"] == 20 and human["by_source"]["adjudicated"] == queued and human["by_source"]["gold"] == 2
    assert human["agreement"]["annotators"] == 3 and human["agreement"]["strategies_alpha_masi"] is not None
    card = (release / "README.md").read_text()
    assert "## Human labels" in card and "20 of 115 utterances" in card and "stance (Fleiss' kappa)" in card

    from datasets import load_dataset

    dialogues = load_dataset(str(release), "dialogues")
    labelled = sum(row["target_strategies"] is not None for split in dialogues.values() for row in split)
    assert labelled == 20
