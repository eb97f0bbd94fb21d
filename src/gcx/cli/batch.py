"""`gcx batch`: a folder tree encoded (or, for .gcx files, decoded) in parallel, resumably."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import click
from tqdm import tqdm

from gcx.cli.convert import codec_option
from gcx.errors import GcxError


@dataclass(frozen=True)
class Task:
    source: Path
    dest: Path
    decode: bool


def _image_suffixes() -> set[str]:
    from PIL import Image

    Image.init()
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def plan(src: Path, dst: Path, recursive: bool, out_format: str) -> tuple[list[Task], list[tuple[Path, str]]]:
    """Map every image (encode) and .gcx file (decode) under `src` to its place in the mirrored `dst`.

    Hidden files and the destination tree itself are left out; two inputs that would write the
    same output are both reported as failures rather than one silently winning.
    """
    suffixes = _image_suffixes()
    dst_resolved = dst.resolve()
    candidates = src.rglob("*") if recursive else src.iterdir()
    tasks: dict[Path, Task] = {}
    failures: list[tuple[Path, str]] = []
    for path in sorted(candidates):
        rel = path.relative_to(src)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.resolve().is_relative_to(dst_resolved):
            continue
        suffix = path.suffix.lower()
        if suffix == ".gcx":
            task = Task(path, dst / rel.with_suffix(f".{out_format}"), True)
        elif suffix in suffixes:
            task = Task(path, dst / rel.with_suffix(".gcx"), False)
        else:
            continue
        if task.dest in tasks:
            other = tasks.pop(task.dest)
            failures += [
                (p, f"output {task.dest} would be written by both inputs (rename one)") for p in (other.source, path)
            ]
            continue
        tasks[task.dest] = task
    return list(tasks.values()), failures


@dataclass(frozen=True)
class Job:
    """What every task of one batch shares."""

    codec: str
    quality: float | None
    options: dict[str, str]
    out_format: str
    force: bool


def convert_one(task: Task, job: Job) -> tuple[int, int]:
    """Encode or decode one file (runs in a worker process); returns (input bytes, output bytes)."""
    from gcx import api
    from gcx.fileio import write_output
    from gcx.image import encode_image_file, load_image

    data = task.source.read_bytes()
    if task.decode:
        out = encode_image_file(api.decode(data, options=job.options), job.out_format)
    else:
        out = api.encode(load_image(data), job.codec, job.quality, options=job.options)
    task.dest.parent.mkdir(parents=True, exist_ok=True)
    write_output(str(task.dest), out, force=job.force)
    return len(data), len(out)


def _run_one(task: Task, job: Job) -> tuple[int, int] | str:
    try:
        return convert_one(task, job)
    except Exception as exc:  # reported per file; the batch goes on
        return f"{type(exc).__name__}: {exc}" if not isinstance(exc, GcxError | OSError) else str(exc)


@click.command("batch")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@click.option("-c", "--codec", default="lossless", show_default=True, help="Codec for encoding.")
@click.option("-q", "--quality", type=click.FloatRange(1, 100), help="Quality 1-100, for lossy codecs.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=os.cpu_count() or 1, show_default=True)
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders (the tree is mirrored).")
@click.option("--format", "out_format", default="png", show_default=True, help="Image format of decoded files.")
@codec_option
@click.option("-f", "--force", is_flag=True, help="Redo and overwrite outputs that already exist.")
def batch(
    src: Path,
    dst: Path,
    codec: str,
    quality: float | None,
    jobs: int,
    recursive: bool,
    out_format: str,
    options: dict[str, str],
    force: bool,
) -> int:
    """Encode every image under SRC into DST (decode .gcx files), skipping outputs already there."""
    from gcx.registry import default_registry

    default_registry.by_name(codec, options)  # fail fast on a wrong name or option, before any worker starts
    out_format = out_format.lower().lstrip(".")
    job = Job(codec, quality, options, out_format.upper(), force)
    tasks, failures = plan(src, dst, recursive, out_format)
    todo = [t for t in tasks if force or not t.dest.exists()]
    skipped = len(tasks) - len(todo)
    done = {"encoded": 0, "decoded": 0}
    in_bytes = 0
    start = time.monotonic()
    dst.mkdir(parents=True, exist_ok=True)
    with (
        tqdm(total=len(todo), unit="file", desc="gcx batch", disable=None, dynamic_ncols=True) as bar,
        ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        pending: dict[Future, Task] = {pool.submit(_run_one, t, job): t for t in todo}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = pending.pop(future)
                    result = future.result()
                    if isinstance(result, str):
                        failures.append((task.source, result))
                    else:
                        done["decoded" if task.decode else "encoded"] += 1
                        in_bytes += result[0]
                    bar.update()
                    elapsed = max(time.monotonic() - start, 1e-9)
                    bar.set_postfix_str(f"{in_bytes / elapsed / 1e6:.1f} MB/s in, {len(failures)} failed")
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            raise
    click.echo(
        f"gcx batch: {done['encoded']} encoded, {done['decoded']} decoded, {skipped} already done, "
        f"{len(failures)} failed",
        err=True,
    )
    for path, message in failures:
        click.echo(f"  failed: {path}: {message}", err=True)
    return 1 if failures else 0
