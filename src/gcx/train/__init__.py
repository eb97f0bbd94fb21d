"""Training data preparation for gcx codecs."""
