"""Pure-Python REFERENCE build of SAD dialogues from Pushshift-style r/ChangeMyView dumps.

This module is the yardstick for the fast (vectorised) pipeline and for benchmarks, so it is
written to be simple and obviously correct rather than fast: one ``json.loads`` per line, plain
dicts, and an explicit-stack walk of each submission's comment tree.

The rules (all parameters come from :class:`~pipelines.sad.settings.SadRules`):

* rows are kept when ``subreddit`` equals ``rules.subreddit`` case-insensitively (submissions and
  comments alike); a row is a comment when it has ``parent_id``, a submission when it has
  ``title``; duplicate ids keep their first occurrence (files in the given order, lines in file
  order, counted after the subreddit filter); comments whose submission is absent are ignored;
* topic: ``re.sub(rules.topic_prefix_pattern, "", title, count=1)``, then ``html.unescape``
  (when ``unescape_title_entities``), then ``collapse_whitespace``;
* the root utterance is the submission's selftext, spoken by the OP, with the moderators'
  footnote removed from the RAW selftext (``strip_footnote``) before cleaning;
* cleaning of every utterance, in order: ``html.unescape``, quote lines removed, URLs replaced,
  whitespace collapsed; ``n_words = count_words(cleaned)``;
* an utterance is invalid when its cleaned text is one of ``invalid_texts`` or empty, its author
  is ``deleted_author`` or one of ``bots``, its ``distinguished`` is one of
  ``invalid_distinguished``, or it has fewer than ``min_words`` words;
* dialogues: root (OP) -> valid top-level comment by a challenger X != OP -> valid reply by OP ->
  valid reply by X -> ...; every valid child by the expected next speaker continues its own
  branch; one example per maximal chain of at least ``min_utterances`` utterances.
"""

from __future__ import annotations

import gzip
import html
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import zstandard

from pipelines.core.text import QUOTE_LINE, URL, collapse_whitespace, count_words, repair_surrogates, strip_footnote
from pipelines.sad.settings import SadRules

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Fields kept from each row (the dumps carry dozens more that the rules never look at).
_SUBMISSION_FIELDS = ("id", "title", "selftext", "author", "created_utc", "distinguished")
_COMMENT_FIELDS = ("id", "link_id", "parent_id", "body", "author", "created_utc", "distinguished")


@dataclass
class ReferenceResult:
    """What the reference build produces.

    ``utterances``: utterance_id -> {submission_id, parent_id (None for the root), speaker
    ("op"/"challenger"), stance (1/0), text, n_words, depth, created_utc}, for every utterance used
    by at least one dialogue. ``dialogues``: sorted by example_id, each {example_id,
    submission_id, topic, context_ids, target_id}. ``nodes_read``: JSON objects read (every
    subreddit, duplicates included). ``bad_lines``: non-blank lines that are not JSON objects.
    """

    utterances: dict[str, dict]
    dialogues: list[dict]
    nodes_read: int
    bad_lines: int = 0


# --------------------------------------------------------------------------- reading


def open_dump(path: Path) -> BinaryIO:
    """A binary stream of the decompressed content; the format is told by the magic bytes."""
    raw = open(path, "rb")
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if magic == ZSTD_MAGIC:
        # Pushshift dumps are compressed with --long=31: allow the largest window.
        dctx = zstandard.ZstdDecompressor(max_window_size=2**31)
        return io.BufferedReader(dctx.stream_reader(raw, read_across_frames=True, closefd=True))  # type: ignore[arg-type]
    return raw


def iter_objects(path: Path, counters: dict[str, int]) -> Iterator[dict]:
    """JSON objects of one dump file, one per line; other non-blank lines are counted as bad."""
    with open_dump(path) as stream:
        for line in stream:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:  # includes UnicodeDecodeError
                counters["bad_lines"] += 1
                continue
            if not isinstance(obj, dict):
                counters["bad_lines"] += 1
                continue
            counters["nodes_read"] += 1
            yield obj


def _as_int(value: object) -> int:
    if isinstance(value, str):
        return int(float(value)) if "." in value else int(value)
    return int(value)  # type: ignore[call-overload]


def _as_str(value: object) -> str:
    return "" if value is None else repair_surrogates(str(value))


# --------------------------------------------------------------------------- rules


def make_topic(title: str, rules: SadRules) -> str:
    topic = re.sub(rules.topic_prefix_pattern, "", title, count=1)
    if rules.unescape_title_entities:
        topic = html.unescape(topic)
    return collapse_whitespace(topic)


def clean_text(text: str, rules: SadRules) -> str:
    if rules.unescape_html:
        text = html.unescape(text)
    if rules.drop_quote_lines:
        text = re.sub(QUOTE_LINE, "", text)
    if rules.url_placeholder is not None:
        # A function replacement: the placeholder is inserted literally (no backslash escapes).
        placeholder = rules.url_placeholder
        text = re.sub(URL, lambda _m: placeholder, text)
    return collapse_whitespace(text)


def is_valid(text: str, n_words: int, author: str, distinguished: object, rules: SadRules) -> bool:
    if text == "" or text in rules.invalid_texts:
        return False
    if author == rules.deleted_author or author in rules.bots:
        return False
    if distinguished is not None and distinguished in rules.invalid_distinguished:
        return False
    return n_words >= rules.min_words


# --------------------------------------------------------------------------- build


def _load(paths: list[Path], rules: SadRules) -> tuple[dict[str, dict], dict[str, dict], dict[str, int]]:
    """Submissions by id and comments by id (first occurrence), of the kept subreddit only."""
    counters = {"nodes_read": 0, "bad_lines": 0}
    submissions: dict[str, dict] = {}
    comments: dict[str, dict] = {}
    wanted = rules.subreddit.lower()
    for path in paths:
        for obj in iter_objects(Path(path), counters):
            if _as_str(obj.get("subreddit")).lower() != wanted:
                continue
            if "parent_id" in obj:
                row = {k: obj.get(k) for k in _COMMENT_FIELDS}
                if _as_str(row["id"]) and _as_str(row["id"]) not in comments:
                    comments[_as_str(row["id"])] = row
            elif "title" in obj:
                row = {k: obj.get(k) for k in _SUBMISSION_FIELDS}
                if _as_str(row["id"]) and _as_str(row["id"]) not in submissions:
                    submissions[_as_str(row["id"])] = row
    return submissions, comments, counters


def reference_build(paths: list[Path], rules: SadRules = SadRules()) -> ReferenceResult:
    """Build utterances and dialogues from dump files (plain, gzip or zstd, told by magic bytes)."""
    submissions, comments, counters = _load(paths, rules)

    # Children of each node, keyed by the parent's prefixed id, for comments of a kept submission.
    children: dict[str, list[dict]] = {}
    for comment in comments.values():
        link_id = _as_str(comment["link_id"])
        if not link_id.startswith("t3_") or link_id[3:] not in submissions:
            continue  # the submission is absent: ignored
        children.setdefault(_as_str(comment["parent_id"]), []).append(comment)

    utterances: dict[str, dict] = {}
    dialogues: list[dict] = []
    for sub_key, sub in submissions.items():
        submission_id = "t3_" + sub_key
        op = _as_str(sub["author"])
        selftext = _as_str(sub["selftext"])
        if rules.strip_footnote:
            selftext = strip_footnote(selftext, rules.footnote_min_underscores)
        root_text = clean_text(selftext, rules)
        root_words = count_words(root_text)
        if not is_valid(root_text, root_words, op, sub["distinguished"], rules):
            continue
        topic = make_topic(_as_str(sub["title"]), rules)
        nodes: dict[str, dict] = {
            submission_id: {
                "submission_id": submission_id,
                "parent_id": None,
                "speaker": "op",
                "stance": 1,
                "text": root_text,
                "n_words": root_words,
                "depth": 0,
                "created_utc": _as_int(sub["created_utc"]),
            }
        }

        def valid_children(parent_id: str, depth: int, speaker_ok) -> list[str]:
            """Ids of the valid children of ``parent_id`` whose author passes ``speaker_ok``."""
            found = []
            for child in children.get(parent_id, []):
                if _as_str(child["link_id"]) != submission_id:
                    continue
                author = _as_str(child["author"])
                if not speaker_ok(author):
                    continue
                text = clean_text(_as_str(child["body"]), rules)
                n_words = count_words(text)
                if not is_valid(text, n_words, author, child["distinguished"], rules):
                    continue
                uid = "t1_" + _as_str(child["id"])
                is_op = author == op
                nodes[uid] = {
                    "submission_id": submission_id,
                    "parent_id": parent_id,
                    "speaker": "op" if is_op else "challenger",
                    "stance": 1 if is_op else 0,
                    "text": text,
                    "n_words": n_words,
                    "depth": depth,
                    "created_utc": _as_int(child["created_utc"]),
                }
                found.append(uid)
            return found

        # Explicit stack of (chain of ids, challenger's name); no recursion, any depth.
        stack: list[tuple[tuple[str, ...], str]] = []
        for top_id in valid_children(submission_id, 1, lambda author: author != op):
            challenger = _as_str(comments[top_id[3:]]["author"])
            stack.append(((submission_id, top_id), challenger))
        used: set[str] = set()
        while stack:
            chain, challenger = stack.pop()
            expected = op if len(chain) % 2 == 0 else challenger  # even length: last was X
            nexts = valid_children(chain[-1], len(chain), lambda author, who=expected: author == who)
            if nexts:
                for uid in nexts:
                    stack.append((chain + (uid,), challenger))
            elif len(chain) >= rules.min_utterances:
                dialogues.append(
                    {
                        "example_id": chain[-1],
                        "submission_id": submission_id,
                        "topic": topic,
                        "context_ids": list(chain),
                        "target_id": chain[-1],
                    }
                )
                used.update(chain)
        for uid in used:
            utterances[uid] = nodes[uid]

    dialogues.sort(key=lambda d: d["example_id"])
    return ReferenceResult(
        utterances=utterances,
        dialogues=dialogues,
        nodes_read=counters["nodes_read"],
        bad_lines=counters["bad_lines"],
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Reference SAD build (pure Python): prints counts.")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    result = reference_build(args.paths)
    print(
        json.dumps(
            {
                "nodes_read": result.nodes_read,
                "bad_lines": result.bad_lines,
                "dialogues": len(result.dialogues),
                "utterances": len(result.utterances),
                "submissions": len({d["submission_id"] for d in result.dialogues}),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
