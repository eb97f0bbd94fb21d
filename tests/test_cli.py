"""The gcx command as users run it: round trips, refusals, one-line errors, no half-written files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import photo_like
from gcx.cli import run


def gcx(capsys, *args: str) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _save(path: Path, pixels: np.ndarray) -> Path:
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels, mode).save(path)
    return path


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_encode_decode_round_trip_is_pixel_exact(capsys, tmp_path, channels):
    src = _save(tmp_path / "in.png", photo_like(37, 53, channels))
    assert gcx(capsys, "encode", src, "-o", tmp_path / "x.gcx")[0] == 0
    assert gcx(capsys, "decode", tmp_path / "x.gcx", "-o", tmp_path / "out.png")[0] == 0
    assert np.array_equal(_pixels(tmp_path / "out.png"), _pixels(src))


def test_default_output_names_and_other_formats(capsys, tmp_path):
    src = _save(tmp_path / "photo.png", photo_like(16, 16, 3))
    assert gcx(capsys, "encode", src)[0] == 0
    assert (tmp_path / "photo.gcx").exists()
    for ext in ("webp", "tiff", "bmp"):
        assert gcx(capsys, "decode", tmp_path / "photo.gcx", "-o", tmp_path / f"back.{ext}")[0] == 0
        assert np.array_equal(_pixels(tmp_path / f"back.{ext}"), _pixels(src)), ext


def test_existing_output_is_never_overwritten_without_force(capsys, tmp_path):
    src = _save(tmp_path / "in.png", photo_like(8, 8, 3))
    target = tmp_path / "x.gcx"
    target.write_bytes(b"precious")
    code, _, err = gcx(capsys, "encode", src, "-o", target)
    assert code == 1 and err == f"gcx: error: {target} exists; use --force to overwrite it\n"
    assert target.read_bytes() == b"precious"
    assert gcx(capsys, "encode", src, "-o", target, "--force")[0] == 0
    assert target.read_bytes().startswith(b"\x89GCX")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "x.gcx"]  # no temp files left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encode", "missing.png"], "no such file: missing.png"),
        (["encode", "notes.txt", "-o", "x.gcx"], "notes.txt: cannot identify image file"),
        (["decode", "notes.txt", "-o", "x.png"], "not a .gcx file (bad signature)"),
        (["encode", "in.png", "-o", "x.gcx", "--codec", "nope"], "no codec named 'nope'"),
        (["encode", "in.png", "-o", "x.gcx", "--quality", "50"], "lossless: a quality does not apply"),
        (["encode", "in.png", "-o", "x.gcx", "--quality", "500"], "500.0 is not in the range 1<=x<=100"),
        (["decode", "a.gcx", "-o", "x.jpg"], "JPEG cannot store the alpha channel"),
        (["decode", "a.gcx", "-o", "x.unknownext"], "cannot write .unknownext"),
        (["encode", "in.png", "-o", "in.png", "--force"], "is the input file"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_user_errors_are_one_line_with_nonzero_exit_and_no_output(capsys, tmp_path, args, message):
    os.chdir(tmp_path)
    _save(tmp_path / "in.png", photo_like(8, 8, 3))
    (tmp_path / "notes.txt").write_text("hello")
    _save(tmp_path / "rgba.png", photo_like(8, 8, 4))
    assert run(["encode", "rgba.png", "-o", "a.gcx"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = gcx(capsys, *args)
    assert code != 0
    assert err.startswith("gcx: error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_info_human_and_json(capsys, tmp_path):
    src = _save(tmp_path / "in.png", photo_like(20, 30, 3))
    gcx(capsys, "encode", src, "-o", tmp_path / "x.gcx")
    code, out, _ = gcx(capsys, "info", tmp_path / "x.gcx", "--json")
    report = json.loads(out)
    assert code == 0
    assert {k: report[k] for k in ("codec", "codec_id", "format_version", "media", "width", "height", "frames")} == {
        "codec": "lossless",
        "codec_id": 1,
        "format_version": 1,
        "media": "image",
        "width": 30,
        "height": 20,
        "frames": 1,
    }
    assert report["size_bytes"] == (tmp_path / "x.gcx").stat().st_size
    assert report["chunks"][0]["type"] == "GHDR" and all(c["crc_ok"] for c in report["chunks"])
    code, out, _ = gcx(capsys, "info", tmp_path / "x.gcx")
    assert code == 0 and "lossless (id 1, version 1)" in out and "GHDR" in out and "bits per pixel" in out


def test_info_reports_a_bad_crc_and_fails(capsys, tmp_path):
    src = _save(tmp_path / "in.png", photo_like(20, 30, 3))
    gcx(capsys, "encode", src, "-o", tmp_path / "x.gcx")
    data = bytearray((tmp_path / "x.gcx").read_bytes())
    data[-20] ^= 0xFF
    (tmp_path / "bad.gcx").write_bytes(bytes(data))
    code, out, err = gcx(capsys, "info", tmp_path / "bad.gcx")
    assert code == 1 and "BAD" in out and "CRC mismatch" in err


def test_codecs_lists_builtins(capsys):
    code, out, _ = gcx(capsys, "codecs", "--json")
    assert code == 0 and {"id": 1, "name": "lossless"}.items() <= json.loads(out)[0].items()


def test_console_script_and_stdio_pipes(tmp_path):
    src = _save(tmp_path / "in.png", photo_like(12, 9, 3))
    exe = [sys.executable, "-m", "gcx"]
    encoded = subprocess.run([*exe, "encode", "-", "-o", "-"], input=src.read_bytes(), capture_output=True, check=True)
    decoded = subprocess.run([*exe, "decode", "-", "-o", "-"], input=encoded.stdout, capture_output=True, check=True)
    (tmp_path / "out.png").write_bytes(decoded.stdout)
    assert np.array_equal(_pixels(tmp_path / "out.png"), _pixels(src))
    bad = subprocess.run([*exe, "decode", "-", "-o", "-"], input=b"junk", capture_output=True)
    assert bad.returncode == 1 and bad.stdout == b"" and bad.stderr.decode().startswith("gcx: error: not a .gcx")


def test_batch_mirrors_the_tree_resumes_and_reports_failures(capsys, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    for name, channels in (("a.png", 3), ("sub/b.png", 1), ("sub/c.bmp", 3)):
        _save(src / name, photo_like(10 + channels, 14, channels, seed=channels))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (src / "readme.txt").write_text("not an image")
    code, _, err = gcx(capsys, "batch", src, dst, "--recursive", "--jobs", "2")
    assert code == 1
    assert "3 encoded" in err and "1 failed" in err and "broken.png" in err
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*.gcx")) == ["a.gcx", "sub/b.gcx", "sub/c.gcx"]
    stamp = (dst / "a.gcx").stat().st_mtime_ns
    (src / "broken.png").unlink()
    code, _, err = gcx(capsys, "batch", src, dst, "--recursive")
    assert code == 0 and "0 encoded" in err and "3 already done" in err
    assert (dst / "a.gcx").stat().st_mtime_ns == stamp
    back = tmp_path / "back"
    code, _, err = gcx(capsys, "batch", dst, back, "--recursive")
    assert code == 0 and "3 decoded" in err
    for name in ("a", "sub/b", "sub/c"):
        original = next(src.glob(f"{name}.*"))
        assert np.array_equal(_pixels(back / f"{name}.png"), np.asarray(Image.open(original))), name


def test_batch_reports_colliding_outputs(capsys, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _save(src / "x.png", photo_like(8, 8, 3))
    _save(src / "x.bmp", photo_like(8, 8, 3))
    code, _, err = gcx(capsys, "batch", src, tmp_path / "dst", "--jobs", "1")
    assert code == 1 and err.count("would be written by both inputs") == 2


def test_info_summarises_files_with_many_chunks(capsys, tmp_path):
    from gcx import api
    from gcx.container import Chunk, pack_container, read_container
    from gcx.image import RasterImage

    parsed = read_container(api.encode(RasterImage(photo_like(8, 8, 3))))
    many = pack_container(parsed.header, [*parsed.chunks[1:-1], *[Chunk("zzzz", b"x" * 10)] * 50])
    (tmp_path / "many.gcx").write_bytes(many)
    code, out, _ = gcx(capsys, "info", tmp_path / "many.gcx")
    assert code == 0 and "55 chunks" in out
    rows = [line.split()[:3] for line in out.splitlines() if line.strip().startswith("zzzz")]
    assert rows == [["zzzz", "50", "1,100"]]
    code, out, _ = gcx(capsys, "info", tmp_path / "many.gcx", "--all-chunks")
    assert code == 0 and sum("unknown (skipped)" in line for line in out.splitlines()) == 50
