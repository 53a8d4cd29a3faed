"""A compiled fast path for JSON lines whose schema is flat: string and int64 fields only.

:func:`scan_ndjson` parses a chunk of complete lines into an Arrow table in two compiled passes
(numba, the GIL released so parsing threads run side by side):

1. one walk over the bytes validates every line as JSON (the whole line, ignored fields
   included: strings, escapes, UTF-8, numbers, literals, nested arrays and objects); each wanted
   value is copied (its escapes decoded, its integer parsed) into its field's buffer the moment
   it is validated, while its bytes are still in the CPU's cache;
2. the buffers become Arrow arrays without another copy.

Copying the values in a second pass, field by field, cost as much as the whole first pass: a
line is about 1 KB, so every value read was a cache miss (67 MB of comments: 155 ms against
about 110 ms now, ``docs/benchmarks.md``).

It handles the ordinary case only and says so by returning ``None`` for anything else, so that
the caller falls back to the reader it replaces (Arrow's JSON reader, then line by line) and
the results stay those of that reader by construction. ``None`` comes back for a chunk with any
of: a line that is not exactly one object (blank, array, trailing text, unterminated), invalid
JSON anywhere, bytes that are not UTF-8, a ``\\u`` escape of a lone surrogate or of NUL, a
wanted field given twice or with another type (a number for a string, a string or a float for
an integer: the slower readers reject or coerce those), an integer of 19 digits or more, an
escaped key, nesting deeper than 64, or more lines than announced; also for a chunk so large that
its string fields would reserve more than MAX_RESERVED bytes of address space.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from pipelines.core.jit import njit, numba, put_utf8

_STRING, _INT = 0, 1
_KINDS = {pa.string(): _STRING, pa.int64(): _INT}
_MAX_DEPTH = 64
_FAIL = -1
# address space reserved for one chunk's string values (string fields x chunk size); a larger
# chunk takes the slower readers' path
MAX_RESERVED = 8 << 30


def supports(schema: pa.Schema) -> bool:
    """Whether :func:`scan_ndjson` can parse into ``schema`` (and numba is installed)."""
    return numba is not None and len(schema) > 0 and all(f.type in _KINDS for f in schema)


_local = threading.local()


def _scratch(size: int) -> np.ndarray:
    """This thread's scratch buffer of at least ``size`` bytes, kept for its next chunk (no page faults)."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.shape[0] < size:
        # chunks differ in size a little: room for the next ones (untouched pages cost nothing)
        buf = _local.buf = np.empty(size + size // 4, dtype=np.uint8)
    return buf


def scan_ndjson(data: bytes, n_lines: int, schema: pa.Schema) -> pa.Table | None:
    """The table of ``n_lines`` JSON lines in ``data``, or ``None`` where the fast path does not apply.

    ``data``: complete lines separated by ``\\n`` (a final newline optional), no ``\\r``.
    Fields absent from a line, or ``null``, are null; other fields are ignored.
    """
    if not supports(schema) or n_lines <= 0:
        return None
    names = [f.name.encode() for f in schema]
    keys = np.frombuffer(b"".join(names), dtype=np.uint8)
    key_off = np.zeros(len(names) + 1, dtype=np.int64)
    key_off[1:] = np.cumsum([len(k) for k in names])
    kinds = np.array([_KINDS[f.type] for f in schema], dtype=np.int8)
    buf = np.frombuffer(data, dtype=np.uint8)
    shift = -buf.ctypes.data % 8  # the first byte on a word boundary
    shift = min(shift, buf.shape[0])
    words = buf[shift : shift + (buf.shape[0] - shift) // 8 * 8].view(np.uint64)
    n = buf.shape[0]
    string_slot = np.cumsum(kinds == _STRING) - 1  # a string field's region in ``out``
    n_strings = int((kinds == _STRING).sum())
    # a field's values are disjoint pieces of ``data`` and decoding never lengthens them, so a
    # region of len(data) bytes holds any field; only the pages written are ever backed by memory
    if n_strings * n > MAX_RESERVED:
        return None
    out = _scratch(max(1, n_strings * n))
    offsets = np.zeros((n_lines + 1, max(1, n_strings)), dtype=np.int64)
    ints = np.zeros((n_lines, len(names)), dtype=np.int64)
    valid = np.zeros((n_lines, len(names)), dtype=np.bool_)
    if _scan(buf, words, shift, keys, key_off, kinds, string_slot, out, offsets, ints, valid) != n_lines:
        return None
    columns = []
    for f, field in enumerate(schema):
        nulls = n_lines - int(valid[:, f].sum())
        bitmap = None if nulls == 0 else pa.py_buffer(np.packbits(valid[:, f], bitorder="little"))
        if kinds[f] == _INT:
            values = np.ascontiguousarray(ints[:, f])
            columns.append(pa.Array.from_buffers(pa.int64(), n_lines, [bitmap, pa.py_buffer(values)], nulls))
            continue
        slot = int(string_slot[f])
        ends = offsets[:, slot]
        if ends[-1] > np.iinfo(np.int32).max:
            return None
        region = out[slot * n : slot * n + int(ends[-1])].copy()  # the scratch is this thread's next chunk's
        columns.append(
            pa.Array.from_buffers(pa.string(), n_lines, [bitmap, pa.py_buffer(ends.astype(np.int32)), pa.py_buffer(region)], nulls)
        )
    return pa.Table.from_arrays(columns, schema=schema)


# --------------------------------------------------------------------------- pass 1: validate and locate


@njit(cache=True, nogil=True, inline="always")
def _utf8_tail(b, pos, n):
    """Position after the UTF-8 sequence whose lead byte is at ``pos`` (>= 0x80), or -1."""
    c = b[pos]
    if 0xC2 <= c <= 0xDF:
        need, lo, hi = 1, 0x80, 0xBF
    elif c == 0xE0:
        need, lo, hi = 2, 0xA0, 0xBF
    elif 0xE1 <= c <= 0xEC or c == 0xEE or c == 0xEF:
        need, lo, hi = 2, 0x80, 0xBF
    elif c == 0xED:  # no encoded surrogates
        need, lo, hi = 2, 0x80, 0x9F
    elif c == 0xF0:
        need, lo, hi = 3, 0x90, 0xBF
    elif 0xF1 <= c <= 0xF3:
        need, lo, hi = 3, 0x80, 0xBF
    elif c == 0xF4:
        need, lo, hi = 3, 0x80, 0x8F
    else:
        return -1
    if pos + need >= n:
        return -1
    d = b[pos + 1]
    if d < lo or d > hi:
        return -1
    for k in range(2, need + 1):
        d = b[pos + k]
        if d < 0x80 or d > 0xBF:
            return -1
    return pos + need + 1


@njit(cache=True, nogil=True, inline="always")
def _hex4(b, pos, n):
    """The value of 4 hex digits at ``pos``, or -1."""
    if pos + 4 > n:
        return -1
    v = 0
    for k in range(4):
        c = b[pos + k]
        if 48 <= c <= 57:
            d = c - 48
        elif 97 <= c <= 102:
            d = c - 87
        elif 65 <= c <= 70:
            d = c - 55
        else:
            return -1
        v = v * 16 + d
    return v

_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)
_QUOTES = np.uint64(0x2222222222222222)
_SLASHES = np.uint64(0x5C5C5C5C5C5C5C5C)
_SPACES = np.uint64(0x2020202020202020)


@njit(cache=True, nogil=True, inline="always")
def _plain_end(b, w, shift, pos, n):
    """First position >= ``pos`` holding a quote, a backslash, a control byte or a non-ASCII byte (or ``n``).

    ``w`` views the buffer as 64-bit words from byte ``shift`` on; eight bytes are tested at once.
    """
    while pos < n and (pos - shift) & 7:
        c = b[pos]
        if c == 34 or c == 92 or c < 0x20 or c >= 0x80:
            return pos
        pos += 1
    if pos >= n:
        return n
    k = (pos - shift) >> 3
    while k < w.shape[0]:
        x = w[k]
        special = (
            ((x ^ _QUOTES) - _ONES) & ~(x ^ _QUOTES)
            | ((x ^ _SLASHES) - _ONES) & ~(x ^ _SLASHES)
            | (x - _SPACES) & ~x
            | x
        ) & _HIGHS
        if special:
            break
        k += 1
    pos = shift + (k << 3)
    while pos < n:
        c = b[pos]
        if c == 34 or c == 92 or c < 0x20 or c >= 0x80:
            return pos
        pos += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _slash_end(b, w, shift, pos, n):
    """First position >= ``pos`` holding a backslash (or ``n``), eight bytes at a time."""
    while pos < n and (pos - shift) & 7:
        if b[pos] == 92:
            return pos
        pos += 1
    k = (pos - shift) >> 3
    last = (n - shift) >> 3
    while k < last:
        x = w[k] ^ _SLASHES
        if (x - _ONES) & ~x & _HIGHS:
            break
        k += 1
    pos = max(pos, shift + (k << 3))
    while pos < n:
        if b[pos] == 92:
            return pos
        pos += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _string_end(b, w, shift, pos, n):
    """``pos`` is just after an opening quote: (position after the closing quote, has escapes), or (-1, _).

    Validates escapes (a lone surrogate or NUL counts as a failure) and UTF-8.
    """
    esc = False
    while pos < n:
        pos = _plain_end(b, w, shift, pos, n)
        if pos >= n:
            break
        c = b[pos]
        if c == 34:  # "
            return pos + 1, esc
        if c == 92:  # backslash
            esc = True
            if pos + 1 >= n:
                return -1, esc
            e = b[pos + 1]
            if e == 117:  # u
                v = _hex4(b, pos + 2, n)
                if v <= 0 or 0xDC00 <= v <= 0xDFFF:
                    return -1, esc
                pos += 6
                if 0xD800 <= v <= 0xDBFF:
                    if pos + 1 >= n or b[pos] != 92 or b[pos + 1] != 117:
                        return -1, esc
                    low = _hex4(b, pos + 2, n)
                    if low < 0xDC00 or low > 0xDFFF:
                        return -1, esc
                    pos += 6
            elif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116:
                pos += 2
            else:
                return -1, esc
        elif c < 0x20:
            return -1, esc
        elif c < 0x80:
            pos += 1
        else:
            pos = _utf8_tail(b, pos, n)
            if pos < 0:
                return -1, esc
    return -1, esc


@njit(cache=True, nogil=True, inline="always")
def _digits_end(b, pos, n):
    while pos < n and 48 <= b[pos] <= 57:
        pos += 1
    return pos


@njit(cache=True, nogil=True, inline="always")
def _number_end(b, pos, n):
    """(position after a JSON number starting at ``pos``, is a plain integer), or (-1, _)."""
    if pos < n and b[pos] == 45:  # -
        pos += 1
    if pos >= n:
        return -1, False
    c = b[pos]
    if c == 48:
        pos += 1
    elif 49 <= c <= 57:
        pos = _digits_end(b, pos, n)
    else:
        return -1, False
    integer = True
    if pos < n and b[pos] == 46:  # .
        integer = False
        first = pos + 1
        pos = _digits_end(b, first, n)
        if pos == first:
            return -1, False
    if pos < n and (b[pos] == 101 or b[pos] == 69):  # e E
        integer = False
        first = pos + 1
        if first < n and (b[first] == 43 or b[first] == 45):
            first += 1
        pos = _digits_end(b, first, n)
        if pos == first:
            return -1, False
    return pos, integer


@njit(cache=True, nogil=True, inline="always")
def _literal_end(b, pos, n):
    """Position after ``true``, ``false`` or ``null`` at ``pos``, or -1."""
    c = b[pos]
    if c == 116 and pos + 4 <= n and b[pos + 1] == 114 and b[pos + 2] == 117 and b[pos + 3] == 101:
        return pos + 4
    if c == 110 and pos + 4 <= n and b[pos + 1] == 117 and b[pos + 2] == 108 and b[pos + 3] == 108:
        return pos + 4
    if c == 102 and pos + 5 <= n and b[pos + 1] == 97 and b[pos + 2] == 108 and b[pos + 3] == 115 and b[pos + 4] == 101:
        return pos + 5
    return -1


@njit(cache=True, nogil=True, inline="always")
def _blank(b, pos, n):
    while pos < n and (b[pos] == 32 or b[pos] == 9):
        pos += 1
    return pos


@njit(cache=True, nogil=True, inline="always")
def _scalar_end(b, w, shift, pos, n):
    c = b[pos]
    if c == 34:
        end, _ = _string_end(b, w, shift, pos + 1, n)
        return end
    if c == 45 or 48 <= c <= 57:
        end, _ = _number_end(b, pos, n)
        return end
    return _literal_end(b, pos, n)


@njit(cache=True, nogil=True, inline="always")
def _value_end(b, w, shift, pos, n):
    """Position after any JSON value at ``pos`` (nested ones validated whole), or -1."""
    c = b[pos]
    if c != 123 and c != 91:  # { [
        return _scalar_end(b, w, shift, pos, n)
    stack = np.empty(_MAX_DEPTH, dtype=np.uint8)  # 123 object, 91 array
    stack[0] = c
    depth = 1
    pos = _blank(b, pos + 1, n)
    if pos < n and (b[pos] == 125 or b[pos] == 93):  # empty container
        if b[pos] != c + 2:
            return -1
        return pos + 1
    while True:
        # at the start of a member (object) or element (array)
        if pos >= n:
            return -1
        if stack[depth - 1] == 123:
            if b[pos] != 34:
                return -1
            pos, _ = _string_end(b, w, shift, pos + 1, n)
            if pos < 0:
                return -1
            pos = _blank(b, pos, n)
            if pos >= n or b[pos] != 58:  # :
                return -1
            pos = _blank(b, pos + 1, n)
            if pos >= n:
                return -1
        c = b[pos]
        if c == 123 or c == 91:
            if depth == _MAX_DEPTH:
                return -1
            stack[depth] = c
            depth += 1
            pos = _blank(b, pos + 1, n)
            if pos < n and (b[pos] == 125 or b[pos] == 93):
                if b[pos] != c + 2:
                    return -1
                depth -= 1
                pos += 1
            else:
                continue
        else:
            pos = _scalar_end(b, w, shift, pos, n)
            if pos < 0:
                return -1
        # after a value: a comma, or closing brackets
        while True:
            pos = _blank(b, pos, n)
            if pos >= n:
                return -1
            c = b[pos]
            if c == 44:  # ,
                pos = _blank(b, pos + 1, n)
                break
            if c != stack[depth - 1] + 2:  # } closes {, ] closes [
                return -1
            depth -= 1
            pos += 1
            if depth == 0:
                return pos


@njit(cache=True, nogil=True, inline="always")
def _field_of(b, ks, ke, keys, key_off):
    length = ke - ks
    for f in range(key_off.shape[0] - 1):
        if key_off[f + 1] - key_off[f] != length:
            continue
        same = True
        for k in range(length):
            if b[ks + k] != keys[key_off[f] + k]:
                same = False
                break
        if same:
            return f
    return -1


@njit(cache=True, nogil=True)
def _scan(b, w, shift, keys, key_off, kinds, string_slot, out, offsets, ints, valid):
    """Validate every line and copy out the wanted values; the number of lines, or -1 (fall back).

    String field ``f`` is written to ``out[slot * n:]`` (``slot = string_slot[f]``) and line
    ``i``'s value ends at ``offsets[i + 1, slot]``; integers go to ``ints[i, f]``; ``valid[i, f]``
    says the value was there and not null.
    """
    n = b.shape[0]
    max_lines = valid.shape[0]
    n_fields = kinds.shape[0]
    used = np.zeros(offsets.shape[1], dtype=np.int64)  # bytes written per string field
    seen = np.full(n_fields, -1, dtype=np.int64)  # the last line that gave each field
    pos = 0
    line = 0
    while pos < n:
        if line >= max_lines:
            return _FAIL
        pos = _blank(b, pos, n)
        if pos >= n or b[pos] != 123:
            return _FAIL
        pos = _blank(b, pos + 1, n)
        if pos < n and b[pos] == 125:
            pos += 1
        else:
            while True:
                if pos >= n or b[pos] != 34:
                    return _FAIL
                ks = pos + 1
                ke = ks
                while ke < n and b[ke] != 34 and b[ke] != 92 and b[ke] >= 0x20 and b[ke] < 0x80:
                    ke += 1
                if ke >= n or b[ke] != 34:  # an escaped or non-ASCII key: let the slower readers decide
                    return _FAIL
                pos = _blank(b, ke + 1, n)
                if pos >= n or b[pos] != 58:
                    return _FAIL
                pos = _blank(b, pos + 1, n)
                if pos >= n:
                    return _FAIL
                f = _field_of(b, ks, ke, keys, key_off)
                c = b[pos]
                if f < 0:
                    pos = _value_end(b, w, shift, pos, n)
                    if pos < 0:
                        return _FAIL
                else:
                    if seen[f] == line:  # the field given twice
                        return _FAIL
                    seen[f] = line
                    if c == 110:  # null
                        pos = _literal_end(b, pos, n)
                        if pos < 0:
                            return _FAIL
                    elif kinds[f] == _STRING:
                        if c != 34:
                            return _FAIL
                        end, esc = _string_end(b, w, shift, pos + 1, n)
                        if end < 0:
                            return _FAIL
                        slot = string_slot[f]
                        base = slot * n
                        used[slot] = _put_string(b, w, shift, pos + 1, end - 1, esc, out, base + used[slot]) - base
                        valid[line, f] = True
                        pos = end
                    else:
                        end, integer = _number_end(b, pos, n)
                        digits = end - pos - (1 if c == 45 else 0)
                        if end < 0 or not integer or digits > 18:
                            return _FAIL
                        ints[line, f] = _int_value(b, pos, end)
                        valid[line, f] = True
                        pos = end
                pos = _blank(b, pos, n)
                if pos >= n:
                    return _FAIL
                if b[pos] == 44:
                    pos = _blank(b, pos + 1, n)
                    continue
                if b[pos] == 125:
                    pos += 1
                    break
                return _FAIL
        pos = _blank(b, pos, n)
        if pos < n:
            if b[pos] != 10:
                return _FAIL
            pos += 1
        for slot in range(used.shape[0]):
            offsets[line + 1, slot] = used[slot]
        line += 1
    return line


# --------------------------------------------------------------------------- copying values


@njit(cache=True, nogil=True, inline="always")
def _int_value(b, s, e):
    """The integer written at ``b[s:e]`` (validated: an optional minus, at most 18 digits)."""
    neg = b[s] == 45
    v = 0
    for p in range(s + 1 if neg else s, e):
        v = v * 10 + (np.int64(b[p]) - 48)
    return -v if neg else v


@njit(cache=True, nogil=True, inline="always")
def _put_string(b, w, shift, s, e, escaped, out, o):
    """Copy the string body ``b[s:e]`` to ``out[o:]``, escapes decoded (validated); the end in ``out``."""
    if not escaped:
        out[o : o + e - s] = b[s:e]
        return o + e - s
    p = s
    while p < e:
        q = _slash_end(b, w, shift, p, e)
        out[o : o + q - p] = b[p:q]
        o += q - p
        p = q
        if p >= e:
            break
        x = b[p + 1]
        if x == 117:
            cp = _hex4(b, p + 2, e)
            p += 6
            if 0xD800 <= cp <= 0xDBFF:
                cp = 0x10000 + ((cp - 0xD800) << 10) + (_hex4(b, p + 2, e) - 0xDC00)
                p += 6
            o = put_utf8(out, o, cp)
            continue
        if x == 110:
            out[o] = 10
        elif x == 116:
            out[o] = 9
        elif x == 114:
            out[o] = 13
        elif x == 98:
            out[o] = 8
        elif x == 102:
            out[o] = 12
        else:  # " \ /
            out[o] = x
        o += 1
        p += 2
    return o
