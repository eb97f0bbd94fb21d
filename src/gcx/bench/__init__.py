"""Benchmark gcx codecs against JPEG, WebP, AVIF and JPEG XL: rate, distortion, speed and BD-rate."""
