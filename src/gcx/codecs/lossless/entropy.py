"""Residual distributions, side-information bytes and range coding with constriction.

Every bucket of residuals is coded with one table from a fixed family of two-sided geometric
distributions (decay x centre offset); the encoder sends the index of the cheapest table. The
family and the code-length estimates are built with integer arithmetic only, so the tables and
the encoder's choices are identical on every machine.
"""

from __future__ import annotations

from functools import cache

import constriction
import numpy as np

from gcx.errors import GcxFormatError

_RangeEncoder = constriction.stream.queue.RangeEncoder
_RangeDecoder = constriction.stream.queue.RangeDecoder
_Categorical = constriction.stream.model.Categorical

MAX_MODULUS = 512
_PEAK = 1 << 24
# 2**(-k/4) in 16-bit fixed point: decays spaced a quarter octave apart in (1 - ratio).
_QUARTER_OCTAVES = (65536, 55109, 46341, 38968)
_N_DECAYS = 44
_CENTRES = (0, -1, 1)  # distribution centre in half steps: 0, -1/2, +1/2
N_TABLES = _N_DECAYS * len(_CENTRES)
_LOG_FRAC = 16


def _decay_table(step: int, length: int) -> list[int]:
    """g[u] = PEAK * (1 - step/65536)**u with floor division, never below 1."""
    g = [_PEAK]
    for _ in range(length - 1):
        g.append(max(1, g[-1] * (65536 - step) // 65536))
    return g


def _build_tables() -> np.ndarray:
    """(N_TABLES, MAX_MODULUS) integer weights over residuals -256..255 (index = residual + 256)."""
    r = np.arange(MAX_MODULUS, dtype=np.int64) - MAX_MODULUS // 2
    out = np.empty((N_TABLES, MAX_MODULUS), dtype=np.int64)
    for j in range(_N_DECAYS):
        step = _QUARTER_OCTAVES[j % 4] >> (j // 4)
        g = np.array(_decay_table(step, 2 * MAX_MODULUS + 2), dtype=np.int64)
        for k, centre in enumerate(_CENTRES):
            out[k * _N_DECAYS + j] = g[np.abs(2 * r - centre)]
    return out


def _log2_mantissa_table() -> np.ndarray:
    """floor(log2(1 + i/1024) * 2**16) for i < 1024, by exact integer squaring."""
    prec = 60
    out = []
    for i in range(1024):
        x = (1024 + i) << (prec - 10)
        bits = 0
        for _ in range(_LOG_FRAC):
            x = (x * x) >> prec
            bits <<= 1
            if x >= 2 << prec:
                x >>= 1
                bits |= 1
        out.append(bits)
    return np.array(out, dtype=np.int64)


_LOG_MANTISSA = _log2_mantissa_table()


def ilog2(x: np.ndarray) -> np.ndarray:
    """log2 of positive int64 values below 2**40 in 16-bit fixed point (error < 2**-10)."""
    x = np.asarray(x, dtype=np.int64)
    _, e = np.frexp(x.astype(np.float64))  # exact: 2**(e-1) <= x < 2**e
    e = e.astype(np.int64)
    top = (x << 11) >> e  # in [1024, 2048)
    return ((e - 1) << _LOG_FRAC) + _LOG_MANTISSA[top - 1024]


TABLES = _build_tables()


@cache
def _window(modulus: int) -> tuple[np.ndarray, np.ndarray]:
    """Table weights and code lengths restricted to residuals -modulus/2 .. modulus/2-1."""
    lo = MAX_MODULUS // 2 - modulus // 2
    w = np.ascontiguousarray(TABLES[:, lo : lo + modulus])
    cost = ilog2(w.sum(axis=1))[:, None] - ilog2(w)
    return w, cost.astype(np.float64)  # exact: BLAS sums of these integer products stay below 2**53


@cache
def table_model(index: int, modulus: int) -> object:
    return _Categorical(_window(modulus)[0][index].astype(np.float64), perfect=False)


def best_table(symbols: np.ndarray, modulus: int) -> int:
    """Index of the table with the smallest estimated code length for `symbols` (0..modulus-1)."""
    hist = np.bincount(symbols, minlength=modulus).astype(np.float64)
    return int(np.argmin(_window(modulus)[1] @ hist))


class SideWriter:
    """Side information as bytes: unsigned and zigzag varints."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def uint(self, v: int) -> None:
        while v >= 0x80:
            self.buf.append((v & 0x7F) | 0x80)
            v >>= 7
        self.buf.append(v)

    def sint(self, v: int) -> None:
        self.uint(2 * v if v >= 0 else -2 * v - 1)


class SideReader:
    """Reads what SideWriter wrote; any overrun or oversized value is a format error."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def uint(self, limit: int) -> int:
        v, shift = 0, 0
        while True:
            if self.pos >= len(self.data):
                raise GcxFormatError(f"{self.what}: side information ends early", offset=self.pos)
            b = self.data[self.pos]
            self.pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if v > limit or shift > 35:
                raise GcxFormatError(f"{self.what}: side value above {limit}", offset=self.pos)
            if not b & 0x80:
                return v

    def sint(self, limit: int) -> int:
        z = self.uint(2 * limit + 1)
        return z >> 1 if not z & 1 else -(z >> 1) - 1

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise GcxFormatError(f"{self.what}: {len(self.data) - self.pos} unused side bytes")


class Encoder:
    def __init__(self) -> None:
        self.side = SideWriter()
        self.coder = _RangeEncoder()

    def symbols(self, symbols: np.ndarray, modulus: int) -> None:
        """Pick the best table for this bucket, announce it, code the symbols."""
        t = best_table(symbols, modulus)
        self.side.uint(t)
        self.coder.encode(symbols.astype(np.int32), table_model(t, modulus))

    def segment(self) -> bytes:
        """[varint side length][side bytes][uint32 little-endian range coder words]."""
        head = SideWriter()
        head.uint(len(self.side.buf))
        words = self.coder.get_compressed()
        # The decoder reads missing words as zeros, so trailing zero words carry nothing; dropping
        # them makes the stream canonical and lets the decoder reject zero padding as leftover data.
        nonzero = np.flatnonzero(words)
        words = words[: nonzero[-1] + 1 if len(nonzero) else 0].astype("<u4").tobytes()
        return bytes(head.buf) + bytes(self.side.buf) + words


class Decoder:
    def __init__(self, segment: bytes, what: str) -> None:
        self.what = what
        head = SideReader(segment, what)
        n_side = head.uint(len(segment))
        start = head.pos
        if start + n_side > len(segment):
            raise GcxFormatError(f"{what}: side information longer than the segment")
        self.side = SideReader(segment[start : start + n_side], what)
        rest = segment[start + n_side :]
        if len(rest) % 4:
            raise GcxFormatError(f"{what}: compressed data is not a whole number of 32-bit words")
        if rest and not any(rest[-4:]):
            raise GcxFormatError(f"{what}: compressed data ends in a zero word (padding)")
        self.coder = _RangeDecoder(np.frombuffer(rest, dtype="<u4").astype(np.uint32))

    def symbols(self, count: int, modulus: int) -> np.ndarray:
        t = self.side.uint(N_TABLES - 1)
        try:
            return self.coder.decode(table_model(t, modulus), count)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # constriction raises AssertionError or a Rust panic on bad data
            raise GcxFormatError(f"{self.what}: invalid compressed data ({e})") from None

    def finish(self) -> None:
        self.side.finish()
        if not self.coder.maybe_exhausted():
            raise GcxFormatError(f"{self.what}: leftover compressed data")
