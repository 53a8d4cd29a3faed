"""numba when it is installed (a dependency; a stripped install runs the Python paths), and
the small compiled helpers the kernels share."""

from __future__ import annotations

try:
    import numba
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        return (lambda f: f) if not args or not callable(args[0]) else args[0]


@njit(cache=True, nogil=True, inline="always")
def put_utf8(out, o, cp):
    """Write code point ``cp`` as UTF-8 at ``out[o]`` (a surrogate as its three bytes, as
    ``surrogatepass`` does); returns the position after it."""
    if cp < 0x80:
        out[o] = cp
        return o + 1
    if cp < 0x800:
        out[o] = 0xC0 | (cp >> 6)
        out[o + 1] = 0x80 | (cp & 0x3F)
        return o + 2
    if cp < 0x10000:
        out[o] = 0xE0 | (cp >> 12)
        out[o + 1] = 0x80 | ((cp >> 6) & 0x3F)
        out[o + 2] = 0x80 | (cp & 0x3F)
        return o + 3
    out[o] = 0xF0 | (cp >> 18)
    out[o + 1] = 0x80 | ((cp >> 12) & 0x3F)
    out[o + 2] = 0x80 | ((cp >> 6) & 0x3F)
    out[o + 3] = 0x80 | (cp & 0x3F)
    return o + 4
