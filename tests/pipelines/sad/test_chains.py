"""The chain walk on small trees: branches, the expected speaker, and trees with no chain."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.sad.dialogues import build_dialogues
from pipelines.sad.reddit import NODES_SCHEMA
from pipelines.sad.settings import SadRules, SadSettings

TEXT = " ".join(["word"] * 12)


def _node(node_id: str, parent: str | None, author: str | None) -> dict:
    root = parent is None
    return {"node_id": node_id, "is_submission": root, "submission_id": "t3_a", "parent_id": parent, "author": author,
            "created_utc": 1, "distinguished": None, "title": "CMV: a topic" if root else None, "raw_text": TEXT,
            "source_file": "f", "line": 1}


TREE = [
    _node("t3_a", None, "op"),
    _node("t1_b", "t3_a", "x"),      # challenger x opens a branch
    _node("t1_c", "t1_b", "op"),
    _node("t1_d", "t1_c", "x"),      # x again: continues
    _node("t1_e", "t1_c", "y"),      # a third person: never part of a chain
    _node("t1_f", "t1_b", "op"),     # OP answers x twice: two branches
    _node("t1_g", "t3_a", "op"),     # OP under their own post: no challenger
    _node("t1_h", "t3_a", "z"),      # challenger z, never answered: too short
]


@pytest.mark.parametrize(
    "rows,min_utterances,contexts,too_short,max_depth",
    [
        ([], 3, [], 0, -1),
        (TREE[:1], 3, [], 1, 0),
        (TREE, 3, [["t3_a", "t1_b", "t1_c", "t1_d"], ["t3_a", "t1_b", "t1_f"]], 1, 3),
        (TREE, 2, [["t3_a", "t1_b", "t1_c", "t1_d"], ["t3_a", "t1_b", "t1_f"], ["t3_a", "t1_h"]], 0, 3),
        (TREE, 4, [["t3_a", "t1_b", "t1_c", "t1_d"]], 2, 3),
    ],
)
def test_chains_on_a_small_tree(rows, min_utterances, contexts, too_short, max_depth):
    settings = SadSettings(rules=SadRules(min_utterances=min_utterances))
    result = build_dialogues({"nodes": pl.DataFrame(rows, schema=NODES_SCHEMA)}, settings)
    assert sorted(result.outputs["dialogues"]["context_ids"].to_list()) == contexts
    assert result.counters["chains_too_short"] == too_short
    assert result.counters["max_depth"] == max_depth


def test_building_dialogues_does_not_import_pandas():
    """pandas is not needed, and importing it cost every worker 0.24 s of its first task."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        import polars as pl
        from pipelines.sad.dialogues import build_dialogues
        from pipelines.sad.reddit import NODES_SCHEMA
        from pipelines.sad.settings import SadSettings
        from tests.pipelines.sad.test_chains import TREE
        result = build_dialogues({"nodes": pl.DataFrame(TREE, schema=NODES_SCHEMA)}, SadSettings())
        assert result.outputs["dialogues"].height == 2
        print("pandas" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
