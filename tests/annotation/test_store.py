"""The workspace task map: read incrementally, and still exact when the file changes under it."""

from __future__ import annotations

import json

from annotation.store import ProjectState


def _lines(state: ProjectState) -> list[dict]:
    return [json.loads(line) for line in (state.root / "tasks.jsonl").read_text().splitlines()]


def test_recorded_chunks_build_the_map_and_are_not_appended_twice(tmp_path):
    state = ProjectState(tmp_path)
    assert state.task_map() == {}
    state.record_tasks([("a", 1), ("b", 2)], {"a": ["x"]})
    state.record_tasks([("c", 3)])
    assert state.task_map() == {"a": 1, "b": 2, "c": 3}
    state.record_tasks([("b", 2), ("d", 4)])  # a recovered chunk repeats pairs already mapped
    assert [row["item_id"] for row in _lines(state)] == ["a", "b", "c", "d"]
    assert state.task_map() == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert state.assignments() == {"a": ["x"]}


def test_the_returned_map_is_a_copy(tmp_path):
    state = ProjectState(tmp_path)
    state.record_tasks([("a", 1)])
    state.task_map()["a"] = 99
    assert state.task_map() == {"a": 1}


def test_appends_by_another_process_are_seen(tmp_path):
    mine, theirs = ProjectState(tmp_path), ProjectState(tmp_path)
    mine.record_tasks([("a", 1)])
    assert mine.task_map() == {"a": 1}
    theirs.record_tasks([("b", 2)])
    assert mine.task_map() == {"a": 1, "b": 2}
    mine.record_tasks([("b", 2)])  # known through the other process's append: not written again
    assert len(_lines(mine)) == 2


def test_a_replaced_or_rewritten_file_is_read_again(tmp_path):
    state, other = ProjectState(tmp_path), ProjectState(tmp_path)
    state.record_tasks([("a", 1), ("b", 2), ("c", 3)])
    assert state.task_map() == {"a": 1, "b": 2, "c": 3}
    other.forget_tasks({"b"})  # another inode
    assert state.task_map() == {"a": 1, "c": 3}
    # rewritten in place to a longer file whose earlier bytes differ: same inode, not an append
    path = tmp_path / "tasks.jsonl"
    rows = [{"item_id": f"z{k}", "task_id": 100 + k, "assigned": []} for k in range(5)]
    with path.open("r+") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    assert state.task_map() == {f"z{k}": 100 + k for k in range(5)}


def test_a_torn_last_line_is_ignored_then_cut_before_the_next_append(tmp_path):
    state = ProjectState(tmp_path)
    state.record_tasks([("a", 1)])
    with (tmp_path / "tasks.jsonl").open("a") as f:
        f.write('{"item_id": "b", "task_')  # a crash in the middle of an append
    assert state.task_map() == {"a": 1}
    state.record_tasks([("b", 2)])
    assert state.task_map() == {"a": 1, "b": 2}
    assert [row["item_id"] for row in _lines(state)] == ["a", "b"]
    assert ProjectState(tmp_path).task_map() == {"a": 1, "b": 2}
