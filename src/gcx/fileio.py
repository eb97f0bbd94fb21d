"""Output files that never clobber and never exist half-written: temp file, fsync, then link or rename."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gcx.errors import GcxError

STDIO = "-"


def read_input(path: str) -> bytes:
    """All bytes of a file, or of stdin for '-'."""
    if path == STDIO:
        return sys.stdin.buffer.read()
    source = Path(path)
    if source.is_dir():
        raise GcxError(f"{path} is a folder (use `gcx batch` for folders)")
    return source.read_bytes()


def check_output(path: str, *, force: bool, source: str | None = None) -> None:
    """Fail before any work if writing `path` would clobber a file or the input."""
    if path == STDIO:
        return
    dest = Path(path)
    if dest.is_dir():
        raise GcxError(f"{path} is a folder; give an output file name")
    if source not in (None, STDIO) and dest.exists() and dest.resolve() == Path(source).resolve():
        raise GcxError(f"output {path} is the input file")
    if dest.exists() and not force:
        raise GcxError(f"{path} exists; use --force to overwrite it")
    if not dest.parent.exists():
        raise GcxError(f"folder {dest.parent} does not exist")


def write_output(path: str, data: bytes, *, force: bool, binary_to_tty_ok: bool = False) -> None:
    """Write `data` to `path` atomically ('-' is stdout)."""
    if path == STDIO:
        if sys.stdout.isatty() and not binary_to_tty_ok:
            raise GcxError("refusing to write binary data to a terminal; use -o FILE or a pipe")
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    check_output(path, force=force)
    with atomic_path(path, force=force) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str, *, force: bool) -> Iterator[str]:
    """A temporary file next to `path` to write into; on success it becomes `path`.

    Without `force` an existing file is never replaced, even one that appears while we write: the
    final step is a hard link, which fails if the name exists. On failure nothing is left behind.
    """
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files owner-only; outputs get the usual mode
        yield tmp
        if force:
            os.replace(tmp, dest)
        else:
            _link_no_clobber(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _link_no_clobber(tmp: str, dest: Path) -> None:
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise GcxError(f"{dest} exists; use --force to overwrite it") from None
    except OSError:  # file systems without hard links: check, then rename
        if dest.exists():
            raise GcxError(f"{dest} exists; use --force to overwrite it") from None
        os.replace(tmp, dest)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
