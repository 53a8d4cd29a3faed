"""Whitespace collapsing and word counting in one compiled pass over a string column.

:func:`collapse_and_count` gives what :func:`pipelines.core.text.collapse_whitespace` and
:func:`pipelines.core.text.count_words` give per text (every run of ``str.isspace()``
characters becomes one space, leading and trailing ones go; words are the space-separated
tokens), for a whole polars column: one walk over the UTF-8 bytes of its Arrow buffer instead of
three polars passes (separators, the regex rewrite, the strip) and a fourth that counts spaces.
On a partition of 233,000 comments (68 MB) the polars passes took 280 ms
(``docs/benchmarks.md``). Without numba the polars expressions are used.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.core.jit import njit, numba
from pipelines.core.text import collapse_whitespace_expr, count_words_expr


@njit(cache=True, nogil=True, inline="always")
def _space_len(b, p, end):
    """Length in bytes of the whitespace character at ``b[p]`` (what ``str.isspace`` accepts), or 0."""
    c = b[p]
    if c < 0x80:
        return 1 if (c == 32 or 9 <= c <= 13 or 28 <= c <= 31) else 0
    if c == 0xC2:  # U+0085, U+00A0
        if p + 1 < end and (b[p + 1] == 0x85 or b[p + 1] == 0xA0):
            return 2
        return 0
    if p + 2 >= end:
        return 0
    d, e = b[p + 1], b[p + 2]
    if c == 0xE1:  # U+1680
        return 3 if d == 0x9A and e == 0x80 else 0
    if c == 0xE2:  # U+2000-U+200A, U+2028, U+2029, U+202F, U+205F
        if d == 0x80 and (0x80 <= e <= 0x8A or e == 0xA8 or e == 0xA9 or e == 0xAF):
            return 3
        return 3 if d == 0x81 and e == 0x9F else 0
    if c == 0xE3:  # U+3000
        return 3 if d == 0x80 and e == 0x80 else 0
    return 0


# byte classes: 0 copied as it is, 1 an ASCII space character, 2 may open a non-ASCII one
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = 1
_CLASS[[0xC2, 0xE1, 0xE2, 0xE3]] = 2


@njit(cache=True, nogil=True)
def _collapse(data, offsets, cls, out, out_offsets, words):
    o = 0
    for i in range(offsets.shape[0] - 1):
        start = o
        pending = False
        n_words = 0
        p, end = offsets[i], offsets[i + 1]
        while p < end:
            c = data[p]
            k = cls[c]
            if k != 0:
                k = 1 if k == 1 else _space_len(data, p, end)
                if k:
                    pending = True
                    p += k
                    continue
            if pending:
                if o > start:
                    out[o] = 32
                    o += 1
                    n_words += 1
                pending = False
            out[o] = c
            o += 1
            p += 1
        if o > start:
            n_words += 1
        words[i] = n_words
        out_offsets[i + 1] = o


def collapse_and_count(texts: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(collapsed texts, word counts as Int32) of a string column; a null text has a null count."""
    if numba is None:
        frame = texts.to_frame("t").select(collapse_whitespace_expr(pl.col("t")).alias("t"))
        counted = frame.select(count_words_expr(pl.col("t"))).to_series()
        return frame.to_series().alias(texts.name), counted.alias("n_words")
    arr = texts.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    if arr.offset:
        arr = pa.concat_arrays([arr])  # buffers from offset 0, so that the validity bitmap is reused as it is
    validity, offsets_buf, data_buf = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[: n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    out = np.empty(max(1, int(offsets[-1] - offsets[0])), dtype=np.uint8)  # collapsing never lengthens
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    words = np.zeros(n, dtype=np.int32)
    base = int(offsets[0])
    _collapse(data[base:], offsets - base, _CLASS, out, out_offsets, words)
    bitmap = validity if arr.null_count else None
    collapsed = pa.LargeStringArray.from_buffers(n, pa.py_buffer(out_offsets), pa.py_buffer(out[: int(out_offsets[-1])]), bitmap, arr.null_count)
    counts = pa.Array.from_buffers(pa.int32(), n, [bitmap, pa.py_buffer(words)], arr.null_count)
    return pl.Series(texts.name, collapsed), pl.Series("n_words", counts)
