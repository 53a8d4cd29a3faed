"""Tiny hand-made dumps for focused tests of the SAD pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import zstandard

LONG = "this sentence has enough words to count as a real utterance for sure"


def sub(sid: str, author: str = "op", title: str = "CMV: a topic", text: str = LONG, **extra) -> dict:
    return {"id": sid, "title": title, "selftext": text, "author": author, "subreddit": "changemyview", "created_utc": 1_500_000_000, **extra}


def com(cid: str, sid: str, parent: str, author: str, text: str = LONG, **extra) -> dict:
    return {
        "id": cid,
        "link_id": f"t3_{sid}",
        "parent_id": parent,
        "body": text,
        "author": author,
        "subreddit": "changemyview",
        "created_utc": 1_500_000_100,
        **extra,
    }


def write_lines(path: Path, rows: list, compression: str = "none") -> Path:
    data = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()
    if compression == "zst":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def thread(sid: str = "s1") -> list[dict]:
    """A submission with one valid chain op -> x -> op (one dialogue)."""
    return [
        sub(sid),
        com(f"{sid}a", sid, f"t3_{sid}", "x"),
        com(f"{sid}b", sid, f"t1_{sid}a", "op"),
    ]
