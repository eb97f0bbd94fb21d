"""Constants of the .gcx container, mirrored from formats/container.md and formats/codecs.md.

These numbers are normative: they are assigned once in `formats/` and never changed or reused.
"""

from __future__ import annotations

# PNG's idea: a non-ASCII first byte catches 7-bit channels, CR LF catches newline conversion,
# 0x1A stops DOS `type`, the final LF catches LF -> CR LF conversion.
SIGNATURE = b"\x89GCX\r\n\x1a\n"

# The format version this code writes, and the highest version it reads.
FORMAT_VERSION = 1
# The lowest reader version able to read what this code writes (EBML's DocTypeReadVersion).
MIN_READER_VERSION = 1

# Chunk types defined by the container itself.
HEADER = "GHDR"
END = "GEND"
ICC = "iccp"
EXIF = "exif"
XMP = "xmpd"
TEXT = "text"
PHYS = "phys"
PIXEL_HASH = "phsh"
FRAME_INDEX = "fidx"
CHUNK_NAMES = {
    HEADER: "header",
    END: "end",
    ICC: "ICC profile",
    EXIF: "EXIF",
    XMP: "XMP",
    TEXT: "text",
    PHYS: "resolution",
    PIXEL_HASH: "pixel hash",
    FRAME_INDEX: "frame index",
}

# Codec IDs as assigned in formats/codecs.md; names for IDs this build may not have installed,
# so an error can say which codec a file needs.
ASSIGNED_CODEC_IDS: dict[int, str] = {
    1: "lossless",
    2: "ntc",
    3: "aigif",
    4: "nvc",
}
PRIVATE_CODEC_IDS = range(0x8000, 0xFFFF)
