"""`gcx info` and `gcx codecs`: what is inside a file, and what this gcx can code."""

from __future__ import annotations

import io
import json
from dataclasses import asdict

import click

from gcx import api
from gcx.fileio import read_input
from gcx.registry import available_codecs

CHUNK_LIST_LIMIT = 40


@click.command("info")
@click.argument("source", metavar="INPUT.gcx")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--all-chunks", is_flag=True, help=f"List every chunk even when there are more than {CHUNK_LIST_LIMIT}.")
def info_cmd(source: str, as_json: bool, all_chunks: bool) -> int:
    """Show a .gcx file's header, chunk table and bits per chunk (damaged CRCs are reported, not fatal)."""
    data = read_input(source)
    report = api.inspect(io.BytesIO(data))
    if report["media"] == "video":
        from gcx.video.api import inspect_video

        report["video"] = inspect_video(io.BytesIO(data))
        if not report["frames"]:  # streamed: GHDR could not know the count
            pixels = report["width"] * report["height"] * max(1, report["video"]["frames"])
            report["bpp"] = 8 * report["size_bytes"] / pixels
        report["problems"] += [p for p in report["video"]["problems"] if p not in report["problems"]]
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(source, report, all_chunks)
    for problem in report["problems"]:
        click.echo(f"gcx: error: {problem}", err=True)
    return 1 if report["problems"] else 0


def _print_report(source: str, r: dict, all_chunks: bool) -> None:
    installed = "" if r["codec_installed"] else "  [not installed]"
    frames = f", {r['frames']} frames" if r["media"] == "video" else ""
    lines = [
        f"{source}: gcx format {r['format_version']} (readable by readers of version {r['min_reader_version']}+)",
        f"  codec    {r['codec']} (id {r['codec_id']}, version {r['codec_version']}){installed}",
        f"  picture  {r['media']} {r['width']}x{r['height']} {r['colour']} {r['bit_depth']}-bit{frames}",
        f"  size     {r['size_bytes']:,} bytes, {r['bpp']:.4f} bits per pixel",
    ]
    if r["weights_hash"]:
        lines.append(f"  weights  sha256 {r['weights_hash']}")
    if "video" in r:
        lines += _video_lines(r["video"], r["width"] * r["height"])
    if len(r["chunks"]) > CHUNK_LIST_LIMIT and not all_chunks:
        lines += _chunk_summary(r["chunks"])
        click.echo("\n".join(lines))
        return
    lines.append(f"  {'chunk':<6}{'offset':>10}{'length':>10}  {'kind':<10}{'crc':<5}{'bits':>11}{'bpp':>9}  holds")
    for c in r["chunks"]:
        kind = "critical" if c["critical"] else "ancillary"
        crc = "ok" if c["crc_ok"] else "BAD"
        lines.append(
            f"  {c['type']:<6}{c['offset']:>10}{c['length']:>10}  {kind:<10}{crc:<5}{c['bits']:>11}{c['bpp']:>9.4f}"
            f"  {c['holds']}"
        )
    click.echo("\n".join(lines))


def _chunk_summary(chunks: list[dict]) -> list[str]:
    """One line per chunk type (count, bytes, bits per pixel, bad CRCs) for files with many chunks."""
    lines = [
        f"  {len(chunks)} chunks (--all-chunks lists each):",
        f"  {'chunk':<6}{'count':>8}{'bytes':>14}{'bpp':>10}  {'bad crc':<8}",
    ]
    for ctype in dict.fromkeys(c["type"] for c in chunks):
        same = [c for c in chunks if c["type"] == ctype]
        bad = sum(not c["crc_ok"] for c in same)
        size = sum(c["bits"] for c in same) // 8
        bpp = sum(c["bpp"] for c in same)
        lines.append(f"  {ctype:<6}{len(same):>8}{size:>14,}{bpp:>10.4f}  {bad or '':<8}")
    return lines


def _video_lines(v: dict, pixels: int) -> list[str]:
    """Frames, GOPs and the bits each frame type costs, for `gcx info` of a video."""
    index = v["index"]
    where = f"index of {index['entries']} entries" if index else "no index (found by scanning)"
    lines = [f"  video    {v['frames']} frames in {v['gops']} GOPs, {where}"]
    for name, t in v["frame_types"].items():
        if t["frames"]:
            per = t["bits_per_frame"]
            label = {"intra": "I-frames", "predicted": "P-frames", "motion": "P-frames"}.get(name, name)  # never both
            lines.append(f"  {label:<9}{t['frames']}, {per:,.0f} bits/frame, {per / pixels:.4f} bpp")
    a = v["audio"]
    if a["streams"]:
        lines.append(f"  audio    {a['streams']} stream(s), {a['packets']} packets, {a['bytes']:,} bytes (kept as is)")
    return lines


@click.command("codecs")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def codecs_cmd(as_json: bool) -> None:
    """List installed codecs with their IDs, versions and media kinds."""
    infos = available_codecs()
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    click.echo(f"{'id':>5}  {'name':<10}{'version':>8}  {'media':<7}{'kind':<9}summary")
    for i in infos:
        kind = "lossy" if i.lossy else "lossless"
        click.echo(f"{i.id:>5}  {i.name:<10}{i.version:>8}  {i.media:<7}{kind:<9}{i.summary}")
        for key, meaning in i.options.items():
            click.echo(f"{'':>7}-O {key}=...  {meaning}")
