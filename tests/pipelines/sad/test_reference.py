"""The pure-Python reference build of SAD, its hand-written sample, and the dump generator."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import pytest
import zstandard

from pipelines.sad.generator import generate_dump
from pipelines.sad.reference import ReferenceResult, clean_text, make_topic, reference_build
from pipelines.sad.settings import SadRules
from tests.pipelines.sad.sample_expectations import (
    SAMPLE_DIR,
    SAMPLE_PATHS,
    check_against_expected,
    load_expected,
)

RULES = SadRules()
LONG = "this sentence has exactly ten words in it for the test"  # 11 words, always valid


def _as_maps(result: ReferenceResult) -> tuple[dict[str, list[str]], dict[str, str], dict[str, str]]:
    dialogues = {d["example_id"]: d["context_ids"] for d in result.dialogues}
    texts = {uid: u["text"] for uid, u in result.utterances.items()}
    topics = {d["submission_id"]: d["topic"] for d in result.dialogues}
    return dialogues, texts, topics


@pytest.fixture(scope="module")
def sample_result() -> ReferenceResult:
    return reference_build(SAMPLE_PATHS)


# --------------------------------------------------------------------------- the bundled sample


def test_sample_matches_hand_written_expectations(sample_result: ReferenceResult) -> None:
    problems = check_against_expected(*_as_maps(sample_result))
    assert not problems, "\n".join(problems)
    counts = load_expected()["reference_counts"]
    assert sample_result.nodes_read == counts["nodes_read"]
    assert sample_result.bad_lines == counts["bad_lines"]


def test_sample_dialogue_fields(sample_result: ReferenceResult) -> None:
    ids = [d["example_id"] for d in sample_result.dialogues]
    assert ids == sorted(ids)
    used = set()
    for d in sample_result.dialogues:
        ctx = d["context_ids"]
        assert d["target_id"] == d["example_id"] == ctx[-1]
        assert ctx[0] == d["submission_id"]
        used.update(ctx)
        for depth, uid in enumerate(ctx):
            u = sample_result.utterances[uid]
            assert u["depth"] == depth
            assert u["submission_id"] == d["submission_id"]
            assert u["parent_id"] == (ctx[depth - 1] if depth else None)
            assert (u["speaker"], u["stance"]) == (("op", 1) if depth % 2 == 0 else ("challenger", 0))
            assert u["n_words"] >= RULES.min_words and u["n_words"] == len(u["text"].split(" "))
            assert isinstance(u["created_utc"], int)
    assert used == set(sample_result.utterances), "utterances must be exactly those used by dialogues"


def test_checker_reports_mismatches(sample_result: ReferenceResult) -> None:
    dialogues, texts, topics = _as_maps(sample_result)
    dialogues = {k: list(v) for k, v in dialogues.items()}
    del dialogues["t1_s01b2"]  # missing
    dialogues["t1_s21a"] = ["t3_s21", "t1_s21a"]  # unexpected, from a no-dialogue submission
    dialogues["t1_s02a4"] = dialogues["t1_s02a4"][:-1]  # wrong context
    texts = dict(texts, t1_s09a3="Fair enough, but&nbsp;the pilot companies were all self-selected volunteers.")
    topics = dict(topics, t3_s06="Daylight saving time should be abolished")
    problems = check_against_expected(dialogues, texts, topics)
    joined = "\n".join(problems)
    for needle in ("missing dialogue t1_s01b2", "unexpected dialogue t1_s21a", "dialogue t1_s02a4", "t3_s21",
                   "text of t1_s09a3", "topic of t3_s06", "t1_s21a refers to t1_s21a"):
        assert needle in joined, joined


def test_committed_sample_is_what_make_sample_writes(tmp_path: Path) -> None:
    from pipelines.sad.sample.make_sample import write_sample

    sub, com = write_sample(tmp_path)
    assert sub.read_bytes() == SAMPLE_PATHS[0].read_bytes()
    dctx = zstandard.ZstdDecompressor()
    assert dctx.decompress(com.read_bytes()) == dctx.decompress(SAMPLE_PATHS[1].read_bytes())


def test_published_sample_is_consistent() -> None:
    sent = json.loads((SAMPLE_DIR / "published" / "sent.json").read_text(encoding="utf-8"))
    arguments = json.loads((SAMPLE_DIR / "published" / "argument.json").read_text(encoding="utf-8"))
    expected = load_expected()
    assert 5 <= len(arguments) <= 8
    prefixes = set()
    for arg in arguments:
        ctx, attitude = arg["context"], arg["attitude"]
        assert set(arg) == {"topic", "context", "attitude"}
        assert len(ctx) == len(attitude) >= 3
        assert attitude == [1 - i % 2 for i in range(len(ctx))]
        assert all(uid in sent for uid in ctx)
        assert expected["dialogues"][ctx[-1]] == ctx
        assert expected["topics"][ctx[0]] == arg["topic"]
        prefixes.update(tuple(ctx[:k]) for k in range(2, len(ctx)))
    assert set(sent) == {uid for arg in arguments for uid in arg["context"]}
    for uid, text in sent.items():
        assert text == expected["texts"].get(uid, text)
    # Examples share history prefixes (the release stores each utterance once).
    assert sum(1 for a in arguments for b in arguments if a is not b and a["context"][:3] == b["context"][:3]) > 0


# --------------------------------------------------------------------------- single rules


@pytest.mark.parametrize(
    ("title", "topic"),
    [
        ("CMV: Cats are great", "Cats are great"),
        ("cmv - Cats are great", "Cats are great"),
        ("CMV-Cats are great", "Cats are great"),
        ("  CMV :   Cats  are\tgreat ", "Cats are great"),
        ("CMV: CMV: Cats are great", "CMV: Cats are great"),
        ("Cats are great CMV: really", "Cats are great CMV: really"),
        ("CMV — Cats are great", "CMV — Cats are great"),
        ("CMV: Cats &amp; dogs &gt; fish", "Cats & dogs > fish"),
    ],
)
def test_topic(title: str, topic: str) -> None:
    assert make_topic(title, RULES) == topic


def test_cleaning_order() -> None:
    text = "&gt; quoted line\n  &gt; indented quote\nkeep 5 &gt; 3 &amp; see https://a.b/c, www.x.org (http://y.z/q) [l](https://m.n/o)\n\n&nbsp;end"
    assert clean_text(text, RULES) == "keep 5 > 3 & see <url> <url> (<url>) [l](<url>) end"
    no_urls = RULES.model_copy(update={"url_placeholder": None, "drop_quote_lines": False})
    assert clean_text("&gt; q\nhttp://a.b", no_urls) == "> q http://a.b"


def _write(path: Path, rows: list, compression: str = "none") -> Path:
    data = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()
    if compression == "gz":
        data = gzip.compress(data)
    elif compression == "zst":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def _sub(sid: str, author: str = "op", selftext: str = LONG, **kw) -> dict:
    return {"id": sid, "title": f"CMV: topic {sid}", "selftext": selftext, "author": author,
            "created_utc": 100, "subreddit": "changemyview", "distinguished": None, **kw}


def _com(cid: str, parent: str, author: str, body: str = LONG, sub: str = "s", **kw) -> dict:
    return {"id": cid, "link_id": f"t3_{sub}", "parent_id": parent, "author": author, "body": body,
            "created_utc": 200, "subreddit": "changemyview", "distinguished": None, **kw}


def _build(tmp_path: Path, rows: list, rules: SadRules = RULES) -> ReferenceResult:
    return reference_build([_write(tmp_path / "dump.jsonl", rows)], rules)


def _contexts(result: ReferenceResult) -> dict[str, list[str]]:
    return {d["example_id"]: d["context_ids"] for d in result.dialogues}


def test_chains_branches_and_third_parties(tmp_path: Path) -> None:
    rows = [
        _sub("s"),
        _com("a", "t3_s", "x"),
        _com("a2", "t1_a", "op"),
        _com("a3", "t1_a2", "x"),
        _com("a3t", "t1_a2", "third"),  # third party: no branch
        _com("a4t", "t1_a3t", "op"),  # OP answering the third party: unused
        _com("a2b", "t1_a", "op"),  # OP's second reply to the same comment: second branch
        _com("b", "t3_s", "y"),  # chain of 2: dropped
        _com("c", "t3_s", "op"),  # OP at top level: no branch
        _com("c2", "t1_c", "x"),
        _com("c3", "t1_c2", "op"),
        _com("d", "t3_s", "x"),  # same challenger, second top-level comment
        _com("d2", "t1_d", "op"),
        _com("d3", "t1_d2", "op"),  # OP answering OP: not continued
    ]
    result = _build(tmp_path, rows)
    assert _contexts(result) == {
        "t1_a3": ["t3_s", "t1_a", "t1_a2", "t1_a3"],
        "t1_a2b": ["t3_s", "t1_a", "t1_a2b"],
        "t1_d2": ["t3_s", "t1_d", "t1_d2"],
    }
    assert set(result.utterances) == {"t3_s", "t1_a", "t1_a2", "t1_a3", "t1_a2b", "t1_d", "t1_d2"}
    assert result.utterances["t1_a3"] == {
        "submission_id": "t3_s", "parent_id": "t1_a2", "speaker": "challenger", "stance": 0,
        "text": LONG, "n_words": 11, "depth": 3, "created_utc": 200,
    }
    assert result.utterances["t3_s"]["parent_id"] is None
    assert result.dialogues[0]["topic"] == "topic s"


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({}, True),
        ({"body": "one two three four five six seven eight nine"}, False),
        ({"body": "one two three four five six seven eight nine ten"}, True),
        ({"body": "one two three four five six seven eight nine&nbsp;ten"}, True),
        ({"body": "&gt; one two three four five\none two three four five six seven eight nine"}, False),
        ({"body": "[deleted]"}, False),
        ({"body": "[removed]"}, False),
        ({"body": "   "}, False),
        ({"author": "[deleted]"}, False),
        ({"author": "DeltaBot"}, False),
        ({"author": "AutoModerator"}, False),
        ({"distinguished": "moderator"}, False),
        ({"distinguished": "admin"}, True),
    ],
)
def test_validity_of_a_reply(tmp_path: Path, changes: dict, valid: bool) -> None:
    # The X reply in root -> X -> OP -> X(changed) -> OP: an invalid node ends the branch
    # before it and its subtree is not used.
    rows = [
        _sub("s"), _com("a", "t3_s", "x"), _com("a2", "t1_a", "op"),
        {**_com("a3", "t1_a2", "x"), **changes}, _com("a4", "t1_a3", "op"),
    ]
    expected = ["t3_s", "t1_a", "t1_a2", "t1_a3", "t1_a4"] if valid else ["t3_s", "t1_a", "t1_a2"]
    assert list(_contexts(_build(tmp_path, rows)).values()) == [expected]


@pytest.mark.parametrize(
    "root",
    [
        {"selftext": "[deleted]", "author": "[deleted]"},
        {"selftext": "[removed]"},
        {"selftext": ""},
        {"selftext": "one two three four five six seven eight nine"},
        {"author": "[deleted]"},
        {"distinguished": "moderator"},
        {"selftext": "_____\n\n&gt; *Hello, users of CMV! This is a footnote from your moderators.*"},
        {"subreddit": "unpopularopinion"},
    ],
)
def test_invalid_or_foreign_root_yields_nothing(tmp_path: Path, root: dict) -> None:
    rows = [{**_sub("s"), **root}, _com("a", "t3_s", "x"), _com("a2", "t1_a", "op"), _com("a3", "t1_a2", "x")]
    result = _build(tmp_path, rows)
    assert result.dialogues == [] and result.utterances == {}


def test_footnote_is_stripped_from_the_raw_selftext(tmp_path: Path) -> None:
    selftext = f"{LONG}\n\n___\n\nmiddle part\n\n_____\n\n&gt; footnote &amp; more"
    rows = [_sub("s", selftext=selftext), _com("a", "t3_s", "x"), _com("a2", "t1_a", "op", body=f"{LONG}\n___\ntail")]
    result = _build(tmp_path, rows)
    assert result.utterances["t3_s"]["text"] == f"{LONG} ___ middle part"
    assert result.utterances["t1_a2"]["text"] == f"{LONG} ___ tail"  # comments keep underscore lines
    off = RULES.model_copy(update={"strip_footnote": False})
    assert _build(tmp_path, rows, off).utterances["t3_s"]["text"] == f"{LONG} ___ middle part _____"


def test_reading_formats_duplicates_orphans_and_bad_lines(tmp_path: Path) -> None:
    subs = [_sub("s", subreddit="ChangeMyView"), {**_sub("s"), "selftext": "[deleted]"}, _sub("o", subreddit="AskReddit")]
    comments = [
        _com("a", "t3_s", "x"), _com("a2", "t1_a", "op"),
        {**_com("a2", "t1_a", "op"), "body": "[removed]"},  # later duplicate: ignored
        _com("z", "t3_gone", "x", sub="gone"), _com("z2", "t1_z", "op", sub="gone"),  # submission absent
        _com("q", "t3_o", "x", sub="o", subreddit="AskReddit"), _com("q2", "t1_q", "op", sub="o", subreddit="AskReddit"),
        '{"id": "broken", "body": "trunc', "[1, 2]", "", "null",
    ]
    want = {"t1_a2": ["t3_s", "t1_a", "t1_a2"]}
    for compression in ("none", "gz", "zst"):
        paths = [_write(tmp_path / "subs.bin", subs, compression), _write(tmp_path / "coms.bin", comments, compression)]
        result = reference_build(paths)
        assert _contexts(result) == want, compression
        assert result.utterances["t1_a2"]["text"] == LONG
        assert (result.nodes_read, result.bad_lines) == (3 + 7, 3)
    # One mixed file gives the same result, whatever the order of the rows (children before
    # parents, comments before submissions), as long as duplicates keep their order.
    mixed = _write(tmp_path / "mixed.jsonl", comments[3:] + [comments[1], comments[0], comments[2]] + subs, "zst")
    assert _contexts(reference_build([mixed])) == want


def test_deep_chain_needs_no_recursion(tmp_path: Path) -> None:
    depth = 5000
    rows = [_sub("s")] + [
        _com(f"c{i}", "t3_s" if i == 1 else f"t1_c{i - 1}", "op" if i % 2 == 0 else "x") for i in range(1, depth + 1)
    ]
    result = _build(tmp_path, rows)
    (dialogue,) = result.dialogues
    assert len(dialogue["context_ids"]) == depth + 1
    assert result.utterances[f"t1_c{depth}"]["depth"] == depth


def test_rules_are_settings(tmp_path: Path) -> None:
    rows = [_sub("s"), _com("a", "t3_s", "x", body="short one"), _com("b", "t3_s", "y")]
    assert _build(tmp_path, rows).dialogues == []
    loose = RULES.model_copy(update={"min_words": 0, "min_utterances": 2, "bots": ()})
    assert set(_contexts(_build(tmp_path, rows, loose))) == {"t1_a", "t1_b"}


# --------------------------------------------------------------------------- generator


def _sha(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _lines(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    elif raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.splitlines()


def test_generator_is_deterministic(tmp_path: Path) -> None:
    a = generate_dump(tmp_path / "a", 3000, seed=7)
    b = generate_dump(tmp_path / "b", 3000, seed=7, threads=1)
    c = generate_dump(tmp_path / "c", 3000, seed=8)
    assert [p.name for p in a] == ["submissions.jsonl.zst", "comments.jsonl.zst"]
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)
    g1 = generate_dump(tmp_path / "g1", 2000, seed=7, compression="gz")
    g2 = generate_dump(tmp_path / "g2", 2000, seed=7, compression="gz")
    assert _sha(g1) == _sha(g2)


def test_generator_formats_and_line_shape(tmp_path: Path) -> None:
    n = 4000
    zst = generate_dump(tmp_path / "zst", n, seed=3)
    plain = generate_dump(tmp_path / "plain", n, seed=3, compression="none")
    gz = generate_dump(tmp_path / "gz", n, seed=3, compression="gz")
    (mixed,) = generate_dump(tmp_path / "mixed", n, seed=3, split_files=False)
    assert mixed.name == "reddit.jsonl.zst"
    subs, coms = _lines(plain[0]), _lines(plain[1])
    assert len(subs) + len(coms) == n
    assert [_lines(p) for p in zst] == [subs, coms] == [_lines(p) for p in gz]
    assert sorted(_lines(mixed)) == sorted(subs + coms)
    comments = [json.loads(line) for line in coms]
    times = [c["created_utc"] for c in comments]
    assert times == sorted(times)
    assert len({c["link_id"] for c in comments[:200]}) > 1  # submissions interleave
    ids = [c["id"] for c in comments] + [json.loads(s)["id"] for s in subs]
    assert len(set(ids)) == len(ids) and all(i.isalnum() and i == i.lower() for i in ids)
    sizes = sorted(len(line) for line in coms)
    assert 500 <= sizes[len(sizes) // 2] <= 1300
    for key in ("retrieved_on", "edited", "gilded", "stickied", "permalink", "author_flair_text",
                "controversiality", "is_submitter", "score"):
        assert key in comments[0]


def test_generated_dump_builds_plausibly(tmp_path: Path) -> None:
    paths = generate_dump(tmp_path, 20_000, seed=1)
    result = reference_build(paths)
    assert result.nodes_read == 20_000 and result.bad_lines == 0
    n = len(result.dialogues)
    assert 0.04 * 20_000 < n < 0.3 * 20_000
    lengths = [len(d["context_ids"]) for d in result.dialogues]
    assert min(lengths) == 3 and max(lengths) >= 12
    assert len({d["submission_id"] for d in result.dialogues}) > 100
    assert len({d["topic"] for d in result.dialogues}) < len({d["submission_id"] for d in result.dialogues})
    texts = [u["text"] for u in result.utterances.values()]
    assert any("<url>" in t for t in texts) and not any("&gt;" in t or "Hello, users of CMV" in t for t in texts)
    assert not any(t.startswith(">") for t in texts)
    # What the rules must drop is present in the dump.
    raw = b"".join(_lines(paths[1])[:5000])
    for needle in (b'"[deleted]"', b'"[removed]"', b'"DeltaBot"', b'"AutoModerator"', b'"moderator"', b"&gt;"):
        assert needle in raw, needle
