"""The validation photos: scikit-image's bundled colour photos, read from the files inside its wheel.

gcx never trains or tunes on these; every figure in the README is measured on them.
`python -m gcx.bench.photos OUTDIR` copies them into a folder for `gcx bench OUTDIR`.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from gcx.errors import GcxError

VALIDATION_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
)


def validation_photo_paths() -> list[Path]:
    """Paths of the photos inside the installed scikit-image (found without importing it)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise GcxError("scikit-image is not installed (pip install 'gcx[test]')")
    folder = Path(spec.origin).parent / "data"
    paths = [folder / name for name in VALIDATION_PHOTOS]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise GcxError(f"scikit-image's wheel lacks {', '.join(missing)}")
    return paths


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m gcx.bench.photos OUTDIR")
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for path in validation_photo_paths():
        shutil.copyfile(path, out / path.name)
    print(f"copied {len(VALIDATION_PHOTOS)} photos to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
