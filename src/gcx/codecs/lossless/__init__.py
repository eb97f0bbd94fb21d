"""Lossless reference codec: reversible colour transform, interlaced prediction, context coding."""
