"""Codecs: each turns pixels into codec chunks and back; the registry picks one by header codec ID."""
