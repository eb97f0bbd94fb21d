"""Build the aigif prompt prior (src/gcx/codecs/aigif/data/words-v1.txt.gz) from CLIP's BPE vocabulary.

Why: short prompts leave an adaptive model nothing to learn from, so the coder needs a prior; CLIP's
merges are ordered by frequency in image captions, so the order in which whole words (`...</w>`)
appear among them is a frequency ranking of caption words. The vocabulary ships in PyPI wheels
(`pip download --no-deps open_clip_torch` holds open_clip/bpe_simple_vocab_16e6.txt.gz); no prompt
set is read, so the evaluation prompts in tests/data/prompts stay held out.

Usage: python scripts/build_prompt_prior.py WHEEL_OR_GZ [-o OUT]
Prints the SHA-256 of the table, which gcx.codecs.aigif.prompt_model.WORDS_SHA256 must match.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import zipfile
from pathlib import Path

VOCAB_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2  # the merges CLIP's tokenizer uses (the file holds more)
# English one-letter words are base tokens, never merges: rank them first; other letters go last.
ONE_LETTER_FIRST = ("a", "i")
OUT = Path(__file__).resolve().parents[1] / "src/gcx/codecs/aigif/data/words-v1.txt.gz"


def read_vocab(path: Path) -> str:
    raw = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            raw = wheel.read(VOCAB_MEMBER)
    return gzip.decompress(raw).decode("utf-8")


def ranked_words(vocab: str) -> list[str]:
    """Whole lower-case ASCII words in the order their final merge is learned (most frequent first)."""
    merges = vocab.split("\n")[1 : MERGES + 1]
    words = list(ONE_LETTER_FIRST)
    seen = set(words)
    for line in merges:
        left, right = line.split()
        token = left + right
        if token.endswith("</w>"):
            word = token[: -len("</w>")]
            if re.fullmatch("[a-z]+", word) and word not in seen:
                seen.add(word)
                words.append(word)
    words += [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in seen]
    return words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="open_clip_torch wheel or bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()
    text = "\n".join(ranked_words(read_vocab(args.source))) + "\n"
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0, filename="") as handle:
        handle.write(text.encode("ascii"))
    args.output.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(text.encode()).hexdigest()
    print(f"{text.count(chr(10))} words, {len(buffer.getvalue())} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
