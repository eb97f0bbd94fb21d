"""The exceptions gcx raises: one type per kind of failure, so callers can tell bad files from bad use."""

from __future__ import annotations


class GcxError(Exception):
    """Base class of every error gcx raises on purpose."""


class GcxFormatError(GcxError):
    """A .gcx stream is damaged, truncated, hostile or of an unsupported version.

    `chunk` and `offset` say where the reader was when it gave up, when known.
    """

    def __init__(self, message: str, *, chunk: str | None = None, offset: int | None = None):
        where = []
        if chunk is not None:
            where.append(f"chunk {chunk}")
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.chunk = chunk
        self.offset = offset


class CodecNotFoundError(GcxError):
    """A file needs a codec that is not installed, or a name/ID matches no codec."""


class UnsupportedImageError(GcxError):
    """An input image cannot be coded as asked (mode, bit depth, size)."""
