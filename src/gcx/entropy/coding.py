"""Grouped categorical coding with escapes on constriction's range coder.

A stream codes groups in the order given; each group's symbols share one Categorical built from
a stored integer table (values lo..hi plus an escape bin). After all groups come the escaped
values, in the same order: below-range flag (uniform over 2), n = bit length of the distance
e >= 1 beyond the range minus 1 (uniform over 32), then the n bits of e below its leading one
(uniform, at most 16 bits per symbol, high part first).
The payload is the u32 word count, then the words, little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import constriction
import numpy as np

from gcx.errors import GcxFormatError

Categorical = constriction.stream.model.Categorical  # extension module: attributes, not importable submodules
Uniform = constriction.stream.model.Uniform
RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder
MAX_ESCAPE_BITS = 31


@dataclass
class Table:
    """Frequencies of values lo..lo+len(freqs)-2, then the escape bin (a stored, exact integer table)."""

    freqs: np.ndarray
    lo: int
    _model: Categorical | None = field(default=None, repr=False)

    @property
    def hi(self) -> int:
        return self.lo + len(self.freqs) - 2

    @property
    def escape(self) -> int:
        return len(self.freqs) - 1

    def model(self) -> Categorical:
        """Built once: exact integers passed as float64, perfect=False set explicitly (see FIELD-NOTES)."""
        if self._model is None:
            self._model = Categorical(np.asarray(self.freqs, np.float64), perfect=False)
        return self._model

    def bits(self, values: np.ndarray) -> float:
        """Ideal code length of `values` under this table, escape payload excluded."""
        idx = np.where((values >= self.lo) & (values <= self.hi), values - self.lo, self.escape)
        p = np.asarray(self.freqs, np.float64) / float(np.sum(self.freqs))
        return float(-np.log2(p[idx]).sum())


_UNIFORM: dict[int, Uniform] = {}


def _uniform(size: int) -> Uniform:
    if size not in _UNIFORM:
        _UNIFORM[size] = Uniform(size)
    return _UNIFORM[size]


def _bit_chunks(n: int) -> list[int]:
    """Widths of the uniform symbols carrying n bits, high part first."""
    return [n - 16, 16] if n > 16 else ([n] if n > 0 else [])


def encode_groups(groups: list[tuple[Table, np.ndarray]]) -> bytes:
    """Code each group's integer values with its table; out-of-range values go through escapes."""
    enc = RangeEncoder()
    escapes: list[tuple[bool, int]] = []  # (below lo, distance beyond the range >= 1)
    for table, values in groups:
        values = np.asarray(values, np.int64).ravel()
        if values.size == 0:
            continue
        inside = (values >= table.lo) & (values <= table.hi)
        symbols = np.where(inside, values - table.lo, table.escape).astype(np.int32)
        enc.encode(symbols, table.model())
        for v in values[~inside].tolist():
            escapes.append((v < table.lo, table.lo - v if v < table.lo else v - table.hi))
    for negative, e in escapes:
        n = e.bit_length() - 1
        if n > MAX_ESCAPE_BITS:
            raise ValueError(f"escaped value too large ({e})")
        enc.encode(int(negative), _uniform(2))
        enc.encode(n, _uniform(MAX_ESCAPE_BITS + 1))
        shift = n
        for width in _bit_chunks(n):
            shift -= width
            enc.encode((e >> shift) & ((1 << width) - 1), _uniform(1 << width))
    words = enc.get_compressed().astype("<u4")
    return struct.pack("<I", len(words)) + words.tobytes()


def decode_groups(payload: bytes, groups: list[tuple[Table, int]], chunk: str) -> list[np.ndarray]:
    """Inverse of encode_groups, given each group's table and symbol count (known to the decoder)."""
    if len(payload) < 4:
        raise GcxFormatError("entropy-coded segment shorter than its word count", chunk=chunk)
    (count,) = struct.unpack_from("<I", payload)
    if len(payload) != 4 + 4 * count:
        raise GcxFormatError(
            f"entropy-coded segment holds {len(payload) - 4} bytes, its count says {4 * count}", chunk=chunk
        )
    words = np.frombuffer(payload, "<u4", count, 4).astype(np.uint32)
    try:
        return _decode(RangeDecoder(words), groups)
    except (AssertionError, ValueError, RuntimeError) as exc:  # constriction's ways of rejecting data
        raise GcxFormatError(f"entropy-coded data is invalid: {exc}", chunk=chunk) from None


def _decode(dec: RangeDecoder, groups: list[tuple[Table, int]]) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    pending: list[tuple[int, np.ndarray, Table]] = []
    for gi, (table, size) in enumerate(groups):
        if size == 0:
            out.append(np.zeros(0, np.int64))
            continue
        symbols = np.asarray(dec.decode(table.model(), size), np.int64)
        values = symbols + table.lo
        escaped = np.nonzero(symbols == table.escape)[0]
        if escaped.size:
            pending.append((gi, escaped, table))
        out.append(values)
    for gi, positions, table in pending:
        for pos in positions.tolist():
            negative = int(dec.decode(_uniform(2)))
            n = int(dec.decode(_uniform(MAX_ESCAPE_BITS + 1)))
            e = 1 << n
            shift = n
            for width in _bit_chunks(n):
                shift -= width
                e |= int(dec.decode(_uniform(1 << width))) << shift
            out[gi][pos] = table.lo - e if negative else table.hi + e
    return out
