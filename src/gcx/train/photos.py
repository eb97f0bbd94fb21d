"""Build the training photo set from Debian wallpaper and puzzle packages, plus textured photos.

`python -m gcx.train.photos OUTDIR` downloads the packages with apt-get, extracts them with dpkg,
downscales each photo by an integer box factor (which also washes out JPEG artefacts, so the
codec is tuned on camera-like statistics rather than on JPEG blocks) and writes PNGs into OUTDIR.
The textured ones come from packages that mostly ship other data (TEXTURED, OpenCV's sample photos)
and from matplotlib's and scikit-learn's sample data. The result depends only on the package
versions, so reruns give identical files.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import matplotlib
from PIL import Image, ImageOps

PACKAGES = (
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "palapeli-data",
    "lomiri-wallpapers-16.04",
    "digikam-data",
    "visp-images-data",
    "stellarium-data",
    "opencv-doc",
    "lomiri-wallpapers-20.04",
    "kphotoalbum",
    "tuxpaint-data",
    "forensics-samples-files",
    "libvigraimpex-dev",
    "libjxl-testdata",
    "lxqt-themes",
)
# Single textured photos from packages that mostly ship other things (wallpapers are mostly sky and blur)
TEXTURED = (
    ("digikam_landscape", "usr/share/digikam/about/images/body-background.jpg"),
    ("visp_solvay", "usr/share/visp-images-data/ViSP-images/Solvay/Solvay_conference_1927_Version2_2126x1463.png"),
    ("visp_klimt", "usr/share/visp-images-data/ViSP-images/Klimt/Klimt.png"),
    (
        "stellarium_gravel",
        "usr/share/stellarium/scenery3d/Testscene/TX_Stellarium-Testscene/Bodenbelag_Schotter_Indisch.jpg",
    ),
    ("stellarium_grass", "usr/share/stellarium/landscapes/guereins/guereinsb.png"),
)
# Camera photos that packages ship as demos, templates, test data or wallpapers (session 7 surveyed the
# archive: no larger source of natural, lightly compressed photos was found)
LXQT_PHOTOS = (
    "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png", "butterfly.png", "cloud.png",
    "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg",
)  # fmt: skip
PHOTO_GLOBS = (
    ("kphotoalbum", "usr/share/kphotoalbum/demo/*.jpg"),  # snapshots: faces, dogs, sea, snow
    ("tuxpaint", "usr/share/tuxpaint/templates/*.jpg"),  # bark, moss, rocks, waves, sheep
    ("forensics", "usr/share/forensics-samples/original-files/pic*/IMG*"),  # phone photos up to 4000x3000
    ("vigra", "usr/share/doc/libvigraimpex-dev/examples/oi.png"),
    ("jxl", "usr/share/libjxl-testdata/jxl/flower/flower.png"),
    ("jxl", "usr/share/libjxl-testdata/external/wesaturate/500px/*_srgb8.png"),
    *(("lxqt", f"usr/share/lxqt/wallpapers/{name}") for name in LXQT_PHOTOS),  # the rest are renders
)
# OpenCV's sample photos (opencv-doc): the natural, colour ones compressed at 1.5 bpp or more; stereo
# and sequence pairs keep one side, renders, documents, charts and motion-blurred shots are left out
OPENCV = (
    "aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg", "butterfly.jpg", "ela_original.jpg",
    "fruits.jpg", "graf1.png", "leuvenA.jpg", "messi5.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png",
    "squirrel_cls.jpg", "starry_night.jpg",
)  # fmt: skip
OPENCV_DIR = "usr/share/doc/opencv-doc/examples/data"
# scikit-learn's two sample photos, read from its wheel (pinned: the photos never change between releases)
SKLEARN = "scikit-learn==1.7.2"
SKLEARN_PHOTOS = ("sklearn/datasets/images/china.jpg", "sklearn/datasets/images/flower.jpg")
# lomiri-wallpapers-20.04 ships one photo (Kleiber) beside digital artwork
LOMIRI_2004_ARTWORK = (
    "Fossa_by_Jasper_Roks.jpg", "Infinite-Sea_by_Aury88.jpg", "Painting-Colors_by__herobrine7gamer.jpg",
)  # fmt: skip
TARGET_SHORT_SIDE = 850
_SIZE_NAME = re.compile(r"^(\d+)x(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


def _download(workdir: Path) -> None:
    """apt-get download into workdir; refresh the package lists once if the first try fails."""
    cmd = ["apt-get", "download", *PACKAGES]
    if subprocess.run(cmd, cwd=workdir).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(cmd, cwd=workdir, check=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", "wheels"]
    subprocess.run([*pip, SKLEARN], cwd=workdir, check=True)


def _extract(workdir: Path) -> Path:
    root = workdir / "root"
    for deb in sorted(workdir.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    for wheel in sorted((workdir / "wheels").glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            for name in SKLEARN_PHOTOS:
                zf.extract(name, root / "wheel")
    return root


def _plasma_sources(root: Path) -> list[tuple[str, Path]]:
    """The largest image of each plasma wallpaper (the packages ship one file per screen size)."""
    out = []
    for wallpaper in sorted((root / "usr/share/wallpapers").iterdir()):
        candidates = []
        for f in (wallpaper / "contents/images").glob("*"):
            m = _SIZE_NAME.match(f.name)
            if m:
                candidates.append((int(m[1]) * int(m[2]), f.name, f))
        if candidates:
            out.append((f"plasma_{wallpaper.name}", max(candidates)[2]))
    return out


def _sources(root: Path) -> list[tuple[str, Path]]:
    mate = sorted((root / "usr/share/backgrounds/mate/nature").glob("*.jpg"))
    palapeli = sorted((root / "usr/share/palapeli/collection").glob("*.jpg"))
    lomiri = sorted((root / "usr/share/backgrounds").glob("*_by_*.jpg"))  # Ubuntu's photo-contest wallpapers
    lomiri = [f for f in lomiri if f.name not in LOMIRI_2004_ARTWORK]
    textured = [(name, root / rel) for name, rel in TEXTURED if (root / rel).exists()]
    for name, rel in TEXTURED:
        if not (root / rel).exists():
            print(f"skip {name}: {rel} is not in this version of its package", file=sys.stderr)
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"  # matplotlib is a dependency
    return (
        _plasma_sources(root)
        + [(f"mate_{f.stem}", f) for f in mate]
        + [(f"palapeli_{f.stem}", f) for f in palapeli]
        + [(f"lomiri_{f.stem.split('_by_')[0]}", f) for f in lomiri]
        + textured
        + ([("matplotlib_grace_hopper", hopper)] if hopper.exists() else [])
        + [(f"opencv_{Path(n).stem}", root / OPENCV_DIR / n) for n in OPENCV if (root / OPENCV_DIR / n).exists()]
        + [(f"sklearn_{Path(n).stem}", root / "wheel" / n) for n in SKLEARN_PHOTOS]
        + [(f"{prefix}_{f.stem}", f) for prefix, pattern in PHOTO_GLOBS for f in sorted(root.glob(pattern))]
    )


def downscale_factor(width: int, height: int) -> int:
    """Integer factor that brings the short side closest to TARGET_SHORT_SIDE."""
    short = min(width, height)
    return min(range(1, max(1, short // 100) + 1), key=lambda f: abs(short / f - TARGET_SHORT_SIDE))


def prepare(src: Path) -> Image.Image:
    """Load as RGB, crop to a multiple of the factor and box-downscale."""
    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")  # some demo photos are stored sideways
    f = downscale_factor(*im.size)
    w, h = im.size[0] // f * f, im.size[1] // f * f
    return im.crop((0, 0, w, h)).reduce(f) if f > 1 else im


def build(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _download(workdir)
        root = _extract(workdir)
        for name, src in _sources(root):
            im = prepare(src)
            kind = "png source, maybe an illustration" if src.suffix.lower() == ".png" else "jpeg source"
            where = src.relative_to(root) if src.is_relative_to(root) else src
            print(f"keep {name:40s} {im.size[0]}x{im.size[1]}  ({kind}: {where})")
            dest = outdir / f"{name}.png"
            tmp_dest = outdir / f".{name}.png.tmp"
            im.save(tmp_dest, format="PNG")
            tmp_dest.replace(dest)
            written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args(argv)
    written = build(args.outdir)
    print(f"{len(written)} photos in {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
