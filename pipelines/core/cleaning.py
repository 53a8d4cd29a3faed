"""The utterance cleaning rules in one compiled pass per text, over a whole string column.

:func:`clean_texts` gives, per text, what these Python rules give one after the other
(:mod:`pipelines.sad.reference` applies them so):

1. ``html.unescape``;
2. ``re.sub(QUOTE_LINE, "", ...)``: lines whose first non-blank character is ">" are emptied;
3. ``re.sub(URL, placeholder, ...)``;
4. :func:`~pipelines.core.text.collapse_whitespace` (every run of ``str.isspace()`` characters
   becomes one space, leading and trailing ones go) and
   :func:`~pipelines.core.text.count_words` (the space-separated tokens).

All four run in one walk over the UTF-8 bytes of the column's Arrow buffer (:func:`_clean`),
instead of a polars pass per rule over the whole column: 165-178 ms against 372-375 ms for one
bench partition of 240,772 texts (100 MB; ``docs/benchmarks.md``). ``html.unescape`` is exact
only in Python: the kernel decodes the entities Reddit writes (``&lt; &gt; &quot; &#39; &nbsp;
&amp;``), and a text with any other ``&`` is unescaped in Python and then cleaned by the kernel
with decoding off. Without numba the polars expressions are used.
"""

from __future__ import annotations

import html

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.core.jit import njit, numba
from pipelines.core.text import QUOTE_LINE, URL, collapse_whitespace_expr, count_words_expr, unescape_html_column, update_where


@njit(cache=True, nogil=True, inline="always")
def space_len(b, p, end):
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


@njit(cache=True, nogil=True, inline="always")
def _entity_len(b, p, end):
    """Length of the entity Reddit writes at ``b[p]`` (an "&"), 0 if it is another one."""
    n = end - p
    c = b[p + 1] if n > 1 else 0
    if c == 108 or c == 103:  # &lt; &gt;
        return 4 if n >= 4 and b[p + 2] == 116 and b[p + 3] == 59 else 0
    if c == 113:  # &quot;
        return 6 if n >= 6 and b[p + 2] == 117 and b[p + 3] == 111 and b[p + 4] == 116 and b[p + 5] == 59 else 0
    if c == 35:  # &#39;
        return 5 if n >= 5 and b[p + 2] == 51 and b[p + 3] == 57 and b[p + 4] == 59 else 0
    if c == 110:  # &nbsp;
        return 6 if n >= 6 and b[p + 2] == 98 and b[p + 3] == 115 and b[p + 4] == 112 and b[p + 5] == 59 else 0
    if c == 97:  # &amp;
        return 5 if n >= 5 and b[p + 2] == 109 and b[p + 3] == 112 and b[p + 4] == 59 else 0
    return 0


@njit(cache=True, nogil=True, inline="always")
def _url_prefix(b, p, n):
    """Length of ``[Hh][Tt][Tt][Pp][Ss]?://`` or ``[Ww][Ww][Ww]\\.`` at ``b[p]``, or 0."""
    c = b[p] | 32
    if c == 104:
        if p + 7 > n or (b[p + 1] | 32) != 116 or (b[p + 2] | 32) != 116 or (b[p + 3] | 32) != 112:
            return 0
        q = p + 4
        if (b[q] | 32) == 115:
            q += 1
        if q + 3 <= n and b[q] == 58 and b[q + 1] == 47 and b[q + 2] == 47:
            return q + 3 - p
        return 0
    if c == 119 and p + 4 <= n and (b[p + 1] | 32) == 119 and (b[p + 2] | 32) == 119 and b[p + 3] == 46:
        return 4
    return 0


# byte classes of the cleaning pass (see _clean)
ORDINARY, SPACE, MAY_SPACE, AMPERSAND, MAY_URL = 0, 1, 2, 3, 4


def _classes(entities: bool, urls: bool) -> np.ndarray:
    cls = _CLASS.copy()
    if entities:
        cls[ord("&")] = AMPERSAND
    if urls:
        cls[[ord(c) for c in "hHwW"]] = MAY_URL
    return cls


@njit(cache=True, nogil=True, inline="always")
def _quote_end(data, p, end, entities):
    """Where the line opening at ``p`` ends (its newline, or ``end``) if it is a quote line (blanks,
    then ">" or "&gt;"); -1 if it is not one; -2 if it holds an entity that needs Python."""
    q = p
    while q < end and (data[q] == 32 or data[q] == 9):
        q += 1
    if q == end:
        return -1
    if data[q] != 62 and not (entities and data[q] == 38 and _entity_len(data, q, end) == 4 and data[q + 1] == 103):
        return -1
    while q < end and data[q] != 10:
        if entities and data[q] == 38 and _entity_len(data, q, end) == 0:
            return -2
        q += 1
    return q


@njit(cache=True, nogil=True, inline="always")
def _put(out, o, start, n_words, pending, c):
    """Write byte ``c`` at ``out[o]``, after one space if whitespace is pending and the text has
    begun (``o > start``); returns (the next position, the words so far)."""
    if pending and o > start:
        out[o] = 32
        o += 1
        n_words += 1
    out[o] = c
    return o + 1, n_words


@njit(cache=True, nogil=True, inline="never")
def _copy_plain(data, cls, out, o, p, end):
    """Copy the run of plain bytes at ``data[p:]`` (up to ``end``) to ``out[o:]``; returns the
    positions after it. A function of its own with unsigned indices: inlined in :func:`_clean`,
    the loop kept its positions on the stack and checked every index for a negative one."""
    uo, up, ue = np.uint64(o), np.uint64(p), np.uint64(end)
    while up < ue and cls[data[up]] == ORDINARY:
        out[uo] = data[up]
        uo += np.uint64(1)
        up += np.uint64(1)
    return np.int64(uo), np.int64(up)


@njit(cache=True, nogil=True)
def _clean(data, offsets, cls, entities, quotes, placeholder, out, out_offsets, words, python):
    """One pass per text over its UTF-8 bytes: every stage at once.

    The stages meet only where the input shows them: entities at "&" (Reddit's decode to one
    character; any other one sends the text to Python: ``python[i] = 1``, empty result); a quote
    line at the start or after a newline (skipped up to its newline); a URL at a prefix (its run
    ends at whitespace, ")" or "]", and "&nbsp;" is whitespace); whitespace (a pending space).
    The decoded characters are never a URL prefix, a newline or a blank, so each rule sees the
    text the previous rules would have made.
    """
    o = 0
    n_ph = placeholder.shape[0]
    for i in range(offsets.shape[0] - 1):
        p, end = offsets[i], offsets[i + 1]
        start = o
        pending = False
        n_words = 0
        bad = False
        if quotes:
            q = _quote_end(data, p, end, entities)
            if q == -2:
                bad = True
                p = end
            elif q >= 0:
                p = q
        while p < end:
            c = data[p]
            k = cls[c]
            if k != ORDINARY:
                if k == SPACE:
                    pending = True
                    p += 1
                    if c == 10 and quotes:
                        q = _quote_end(data, p, end, entities)
                        if q == -2:
                            bad = True
                            break
                        if q >= 0:
                            p = q
                    continue
                if k == MAY_SPACE:
                    w = space_len(data, p, end)
                    if w:
                        pending = True
                        p += w
                        continue
                elif k == AMPERSAND:
                    e = _entity_len(data, p, end)
                    if e == 0:
                        bad = True
                        break
                    d = data[p + 1]
                    p += e
                    if d == 110:  # &nbsp;: U+00A0, whitespace
                        pending = True
                        continue
                    o, n_words = _put(out, o, start, n_words, pending, 60 if d == 108 else 62 if d == 103 else 34 if d == 113 else 39 if d == 35 else 38)
                    pending = False
                    continue
                else:  # MAY_URL
                    u = _url_prefix(data, p, end)
                    if u:
                        q = p + u
                        while q < end:
                            b = data[q]
                            if b == 41 or b == 93:
                                break
                            t = cls[b]
                            if t == SPACE or (t == MAY_SPACE and space_len(data, q, end)):
                                break
                            if t == AMPERSAND:
                                e = _entity_len(data, q, end)
                                if e == 0:
                                    bad = True
                                    break
                                if data[q + 1] == 110:  # &nbsp; ends the URL
                                    break
                                q += e
                                continue
                            q += 1
                        if bad:
                            break
                        if q > p + u:  # the placeholder goes through the whitespace rule too
                            j = 0
                            while j < n_ph:
                                b = placeholder[j]
                                t = cls[b]
                                w = 1 if t == SPACE else space_len(placeholder, j, n_ph) if t == MAY_SPACE else 0
                                if w:
                                    pending = True
                                    j += w
                                    continue
                                o, n_words = _put(out, o, start, n_words, pending, b)
                                pending = False
                                j += 1
                            p = q
                            continue
            o, n_words = _put(out, o, start, n_words, pending, c)
            pending = False
            o, p = _copy_plain(data, cls, out, o, p + 1, end)
        if bad:
            python[i] = 1
            o = start
        elif o > start:
            n_words += 1
        words[i] = n_words
        out_offsets[i + 1] = o


def string_buffers(texts: pl.Series) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """The column as one Arrow large-string array from offset 0 (so that its validity bitmap can
    be reused as it is), its offsets rebased to 0, and its UTF-8 bytes."""
    arr = texts.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    if arr.offset:
        arr = pa.concat_arrays([arr])
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[: len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    base = int(offsets[0])
    return arr, offsets - base, data[base:]


def int32_series(like: pa.Array, name: str, values: np.ndarray) -> pl.Series:
    """``values`` (int32, one per row of ``like``) as a series, null where ``like`` is (its
    validity bitmap reused, as :func:`string_buffers` keeps it at offset 0)."""
    bitmap = like.buffers()[0] if like.null_count else None
    return pl.Series(name, pa.Array.from_buffers(pa.int32(), len(like), [bitmap, pa.py_buffer(values)], like.null_count))


def _series(arr: pa.Array, name: str, out: np.ndarray, out_offsets: np.ndarray, words: np.ndarray) -> tuple[pl.Series, pl.Series]:
    n = len(arr)
    bitmap = arr.buffers()[0] if arr.null_count else None
    text = pa.LargeStringArray.from_buffers(n, pa.py_buffer(out_offsets), pa.py_buffer(out[: int(out_offsets[-1])]), bitmap, arr.null_count)
    return pl.Series(name, text), int32_series(arr, "n_words", words)


def _run(texts: pl.Series, entities: bool, quotes: bool, placeholder: bytes | None) -> tuple[pl.Series, pl.Series, np.ndarray]:
    arr, offsets, data = string_buffers(texts)
    n = len(arr)
    # a URL is at least 5 bytes ("www.x"), so replacing URLs grows a text at most this much
    grow = max(1, -(-len(placeholder or b"") // 5))
    out = np.empty(max(1, int(offsets[-1]) * grow), dtype=np.uint8)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    words = np.zeros(n, dtype=np.int32)
    python = np.zeros(n, dtype=np.uint8)
    ph = np.frombuffer(placeholder or b"", dtype=np.uint8)
    _clean(data, offsets, _classes(entities, placeholder is not None), entities, quotes, ph, out, out_offsets, words, python)
    text, counts = _series(arr, texts.name, out, out_offsets, words)
    return text, counts, python


def clean_texts(texts: pl.Series, unescape: bool = True, drop_quotes: bool = True, url_placeholder: str | None = "<url>") -> tuple[pl.Series, pl.Series]:
    """(cleaned texts, word counts as Int32) of a string column; a null text stays null."""
    if numba is None:
        return _clean_polars(texts, unescape, drop_quotes, url_placeholder)
    placeholder = None if url_placeholder is None else url_placeholder.encode()
    text, counts, python = _run(texts, unescape, drop_quotes, placeholder)
    rows = np.flatnonzero(python)
    if rows.size:  # entities only Python's html.unescape decodes exactly
        raw = texts.gather(rows).to_list()
        fixed, fixed_counts, _ = _run(pl.Series([html.unescape(t) for t in raw], dtype=pl.String), False, drop_quotes, placeholder)
        index = pl.Series(rows)
        text, counts = text.scatter(index, fixed), counts.scatter(index, fixed_counts)
    return text, counts


def _clean_polars(texts: pl.Series, unescape: bool, drop_quotes: bool, url_placeholder: str | None) -> tuple[pl.Series, pl.Series]:
    name = texts.name
    frame = texts.alias("t").to_frame()
    t = pl.col("t")
    if unescape:
        frame = unescape_html_column(frame, "t")
    if drop_quotes:
        frame = update_where(frame, "t", t.str.contains(">", literal=True), t.str.replace_all(QUOTE_LINE, ""))
    if url_placeholder is not None:
        frame = update_where(frame, "t", t.str.contains(URL), t.str.replace_all(URL, url_placeholder.replace("$", "$$")))
    frame = frame.select(collapse_whitespace_expr(t).alias("t"))
    counted = frame.select(count_words_expr(t)).to_series()
    return frame.to_series().alias(name), counted.alias("n_words")
