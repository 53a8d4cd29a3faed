"""Seeded writers of hostile and broken inputs: the bad-input corpus of tests/badinputs/cases.py.

Nothing big is committed: every case's files are written at test time into a temporary folder.
The bombs are small on disk and huge when expanded, and are built so that writing them costs
little time or memory (a compressed frame of zeros repeated, a PNG header that lies):

* :func:`zstd_bomb` / :func:`gzip_bomb`: concatenated frames (members) of one compressed block of
  zeros: a few hundred KB that expand to GBs;
* :func:`png_header_bomb`: a valid PNG signature and IHDR claiming 50,000 x 50,000 pixels;
  :func:`png_pixel_bomb`: a real, complete PNG of 10,000 x 10,000 grey pixels (100 Mpx) in ~100 KB;
* :func:`deep_json`: JSON nested 100,000 levels deep;
* :func:`giant_line`: one record whose text is tens of MB (streamed to the file in pieces).

``python -m tests.badinputs.generate OUT`` writes every case's inputs under ``OUT/<case id>/``.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
import sys
import tarfile
import zlib
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parents[2]
RELAIONET_SAMPLE = REPO / "pipelines" / "relaionet" / "sample" / "images"
LONG = "this sentence has enough words to count as a real utterance for sure"
GB = 1 << 30


# --------------------------------------------------------------------------- plain writers


def write_lines(path: Path, rows: list, *, bom: bool = False, newline: bytes = b"\n", compression: str = "none") -> Path:
    """Rows (dicts as JSON, str as given, bytes verbatim), one a line."""
    data = b"".join(
        (r if isinstance(r, bytes) else (r if isinstance(r, str) else json.dumps(r)).encode("utf-8")) + newline for r in rows
    )
    if bom:
        data = b"\xef\xbb\xbf" + data
    if compression == "zst":
        data = zstandard.ZstdCompressor().compress(data)
    elif compression == "gz":
        data = gzip.compress(data, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_json(path: Path, value: object, *, prefix: bytes = b"", encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(prefix + json.dumps(value, ensure_ascii=False).encode(encoding))
    return path


def deep_json(depth: int = 100_000, inner: str = "1") -> str:
    """``[[[...1...]]]`` nested ``depth`` deep: recursive parsers overflow their stack on it."""
    return "[" * depth + inner + "]" * depth


def deep_object(depth: int = 100_000) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def giant_line(path: Path, before: list[str], record_prefix: str, size: int, after: list[str], suffix: str = '"}') -> Path:
    """``before`` lines, one line ``record_prefix + 'x' * size + suffix``, ``after`` lines; written in pieces."""
    path.parent.mkdir(parents=True, exist_ok=True)
    piece = b"x" * (1 << 20)
    with open(path, "wb") as f:
        for line in before:
            f.write(line.encode() + b"\n")
        f.write(record_prefix.encode())
        left = size
        while left > 0:
            f.write(piece[: min(left, len(piece))])
            left -= len(piece)
        f.write(suffix.encode() + b"\n")
        for line in after:
            f.write(line.encode() + b"\n")
    return path


def truncate(path: Path, keep: float | int = 0.6) -> Path:
    """Keep a fraction (float) or a number of bytes (int) of the file."""
    data = path.read_bytes()
    path.write_bytes(data[: keep if isinstance(keep, int) else max(1, int(len(data) * keep))])
    return path


# --------------------------------------------------------------------------- bombs


def zstd_bomb(path: Path, expanded: int = 4 * GB, head: bytes = b"") -> Path:
    """``head`` (e.g. good lines) then zeros, ``expanded`` bytes in all, as concatenated zstd frames."""
    block = 64 << 20
    frame = zstandard.ZstdCompressor(level=19).compress(b"\x00" * block)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        if head:
            f.write(zstandard.ZstdCompressor().compress(head))
        for _ in range(max(1, expanded // block)):
            f.write(frame)
    return path


def gzip_bomb(path: Path, expanded: int = 2 * GB, head: bytes = b"") -> Path:
    """The same with gzip members (gzip cannot beat ~1,000:1, so the file is ~2 MB for 2 GB)."""
    block = 64 << 20
    member = gzip.compress(b"\x00" * block, compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        if head:
            f.write(gzip.compress(head, mtime=0))
        for _ in range(max(1, expanded // block)):
            f.write(member)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels, with one tiny IDAT: a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")


def png_pixel_bomb(side: int = 10_000) -> bytes:
    """A complete, valid grey PNG of ``side`` x ``side`` pixels (100 Mpx by default) in ~100 KB."""
    row = b"\x00" * (side + 1)  # filter byte + pixels
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(side)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts)) + _png_chunk(b"IEND", b"")


# --------------------------------------------------------------------------- images


def noise_png(rng: random.Random, side: int = 96) -> bytes:
    """A distinct random RGB image (pHashes of two such images are far apart)."""
    from PIL import Image

    raw = bytes(rng.getrandbits(8) for _ in range(side * side * 3))
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), raw).save(out, format="PNG")
    return out.getvalue()


def tiny_png(side: int = 10) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------- the corpus


def generate(out: Path, seed: int = 0, only: str | None = None) -> dict[str, list[str]]:
    """Write every case's inputs under ``out/<case id>/``; returns each case's CLI arguments."""
    from tests.badinputs.cases import CASES

    args = {}
    for case in CASES:
        if only and only not in case.id:
            continue
        built = case.build(out / case.id, random.Random(f"{seed}:{case.id}"))
        args[case.id] = built.args
    return args


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "badinputs-corpus")
    for case_id, case_args in generate(target).items():
        print(case_id, " ".join(case_args))
