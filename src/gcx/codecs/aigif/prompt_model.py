"""Prompt coder: text arithmetic-coded with a word model whose prior is CLIP's caption-word ranking.

Why this shape: prompts are tens to hundreds of characters, too short for any adaptive model (or
zlib/zstd) to learn from, so nearly all the gain must come from a prior. Letter runs found in the
prior's word list cost one symbol drawn from a Zipf distribution over the list's frequency ranks;
other runs are spelled letter by letter with an order-2 model whose prior counts come from the same
list; everything else (punctuation, digits, any UTF-8 byte) uses adaptive order-2/1/0 contexts.

Every probability is an integer computed with integer arithmetic, so encoder and decoder agree
bit for bit on every machine; constriction receives them as float64 arrays of exact integers.
The normative description is formats/aigif.md, "Prompt coding model".
"""

from __future__ import annotations

import gzip
import hashlib
from functools import cache
from importlib.resources import files

import constriction
import numpy as np

from gcx.errors import GcxFormatError

MODEL_ID = 1  # the prompt model version; a new prior table or rule gets a new id
WORDS_FILE = "words-v1.txt.gz"
WORDS_SHA256 = "71e07b6a95220befecab6e8c5f7cf96feae7cb969ca1995c3628163116e47a35"  # of the decompressed list
# A text may be at most this many bytes per coded byte (plus a constant): hostile streams can cost
# almost 0 bits per symbol, so without a bound a few bytes could decode for minutes.
TEXT_BYTES_PER_CODED_BYTE = 64
TEXT_BYTES_FREE = 4096


def max_text_bytes(coded_bytes: int) -> int:
    return TEXT_BYTES_FREE + TEXT_BYTES_PER_CODED_BYTE * coded_bytes


# The symbol alphabet of the character model.
EOS, WORD, SPELL, END = 0, 1, 2, 3
BYTE0 = 4
NSYM = BYTE0 + 256
# Coding states: before a possible word, right after a letter run, inside a spelled word.
START, AFTER, SPELLING = 0, 1, 2

ZIPF_OFFSET = 8  # P(rank r) is proportional to 1 / (r + ZIPF_OFFSET)
ZIPF_SCALE = 1 << 40
WORD_REPEAT_SHARE = 16  # a word already seen in this text gets 1/16 of the prior mass per occurrence
ORDER_WEIGHTS = (16, 4, 1)  # orders 2, 1, 0
MIX_SCALE = 1 << 16
CONFIDENCE = 4  # a context seen n times (weighted) is trusted in proportion n / (n + CONFIDENCE * ADAPT)
ADAPT = 32  # weight of one adaptive observation, in prior-count units
SPELL_PRIOR_TOTAL = 1024  # each spelling context's prior counts are scaled to this total
CASE_PRIOR = (16, 1, 1)  # lower, Capitalised, UPPER
CASE_ADAPT = 8

_LETTERS = frozenset(range(ord("A"), ord("Z") + 1)) | frozenset(range(ord("a"), ord("z") + 1))
_SPACE = ord(" ")
_LETTER_CLASS = ord("a")


def _mask(symbols: list[int]) -> np.ndarray:
    mask = np.zeros(NSYM, np.int64)
    mask[symbols] = 1
    return mask


_NON_LETTER_BYTES = [BYTE0 + b for b in range(256) if b not in _LETTERS]
_ALLOWED = {
    START: _mask([EOS, WORD, SPELL, *_NON_LETTER_BYTES]),
    AFTER: _mask([EOS, *_NON_LETTER_BYTES]),
    SPELLING: _mask([END, *(BYTE0 + b for b in _LETTERS)]),
}


def _structural_prior() -> dict[tuple, np.ndarray]:
    """Order-0 priors of the non-spelling states: a prompt is mostly dictionary words separated by
    spaces and commas. Small counts, so the adaptive model overrides them within a few symbols."""
    start = np.zeros(NSYM, np.int64)
    start[[WORD, SPELL, BYTE0 + _SPACE]] = (8 * ADAPT, ADAPT, ADAPT)
    after = np.zeros(NSYM, np.int64)
    after[[EOS, BYTE0 + ord(","), BYTE0 + _SPACE]] = (ADAPT, 4 * ADAPT, 4 * ADAPT)
    return {(START,): start, (AFTER,): after}


class _Prior:
    """The static tables: the ranked word list, its Zipf weights and the spelling n-gram counts."""

    def __init__(self, words: list[str]) -> None:
        self.words = [w.encode("ascii") for w in words]
        self.rank = {w: i for i, w in enumerate(self.words)}
        self.zipf = ZIPF_SCALE // (np.arange(len(words), dtype=np.int64) + ZIPF_OFFSET)
        self.zipf_total = int(self.zipf.sum())
        self.contexts = _structural_prior()
        self.contexts.update(_spelling_prior(self.words))


def _spelling_prior(words: list[bytes]) -> dict[tuple, np.ndarray]:
    """Letter counts after every (two-letter, one-letter, empty) context over the word list, each word
    counted once (spelled words are rare ones, which resemble the list's types more than its tokens)."""
    alphabet = bytes([_SPACE]) + bytes(range(ord("a"), ord("z") + 1))
    code = {c: i for i, c in enumerate(alphabet)}
    c2, c1, symbols = [], [], []
    for word in words:
        padded = [0, 0] + [code[c] for c in word]
        c2 += padded[:-1]
        c1 += padded[1:]
        symbols += [BYTE0 + c for c in word] + [END]
    flat = (np.array(c2) * len(alphabet) + np.array(c1)) * NSYM + np.array(symbols)
    counts = np.bincount(flat, minlength=len(alphabet) ** 2 * NSYM).reshape(len(alphabet), len(alphabet), NSYM)
    tables = {}
    for key, table in (
        *((((SPELLING, a, b)), counts[i, j]) for i, a in enumerate(alphabet) for j, b in enumerate(alphabet)),
        *((((SPELLING, b)), counts[:, j].sum(0)) for j, b in enumerate(alphabet)),
        ((SPELLING,), counts.sum((0, 1))),
    ):
        total = int(table.sum())
        if total:
            tables[key] = table.astype(np.int64) * SPELL_PRIOR_TOTAL // total
    return tables


def _spell_keys(c2: int, c1: int) -> tuple[tuple, ...]:
    """Spelling contexts ignore case; a non-letter before the word counts as a space."""
    a = c2 | 0x20 if c2 in _LETTERS else _SPACE
    b = c1 | 0x20 if c1 in _LETTERS else _SPACE
    return (SPELLING, a, b), (SPELLING, b), (SPELLING,)


def _text_keys(state: int, c2: int, c1: int) -> tuple[tuple, ...]:
    """Punctuation contexts see letters as one class: what follows a word hardly depends on the word."""
    a = _LETTER_CLASS if c2 in _LETTERS else c2
    b = _LETTER_CLASS if c1 in _LETTERS else c1
    return (state, a, b), (state, b), (state,)


@cache
def load_prior() -> _Prior:
    """The prior, checked against its registered hash: a changed table would silently change decoding."""
    raw = gzip.decompress(files("gcx.codecs.aigif").joinpath("data", WORDS_FILE).read_bytes())
    if hashlib.sha256(raw).hexdigest() != WORDS_SHA256:
        raise GcxFormatError(f"prompt prior {WORDS_FILE} does not match its registered hash; reinstall gcx")
    return _Prior(raw.decode("ascii").split())


class _Model:
    """The adaptive state shared, step for step, by the encoder and the decoder of one text."""

    def __init__(self) -> None:
        self.prior = load_prior()
        self.seen: dict[tuple, np.ndarray] = {}
        self.word_counts: dict[int, int] = {}
        self.case_counts = [0, 0, 0]
        self.history = [-1, -1]

    def _keys(self, state: int) -> tuple[tuple, ...]:
        c2, c1 = self.history[-2], self.history[-1]
        return _spell_keys(c2, c1) if state == SPELLING else _text_keys(state, c2, c1)

    def symbol_weights(self, state: int) -> tuple[np.ndarray, tuple[tuple, ...]]:
        keys = self._keys(state)
        mixed = np.zeros(NSYM, np.int64)
        for weight, key in zip(ORDER_WEIGHTS, keys, strict=True):
            counts = self.prior.contexts.get(key)
            seen = self.seen.get(key)
            if seen is not None:
                counts = seen * ADAPT if counts is None else counts + seen * ADAPT
            if counts is None:
                continue
            total = int(counts.sum())
            share = weight * MIX_SCALE * total // (total + CONFIDENCE * ADAPT)
            mixed += counts * share // total
        allowed = _ALLOWED[state]
        return (mixed + 1) * allowed, keys

    def update_symbol(self, keys: tuple[tuple, ...], symbol: int) -> None:
        for key in keys:
            self.seen.setdefault(key, np.zeros(NSYM, np.int64))[symbol] += 1

    def word_weights(self) -> np.ndarray:
        weights = self.prior.zipf.copy()
        share = self.prior.zipf_total // WORD_REPEAT_SHARE
        for index, count in self.word_counts.items():
            weights[index] += share * count
        return weights

    def case_weights(self) -> np.ndarray:
        return np.array([p + CASE_ADAPT * c for p, c in zip(CASE_PRIOR, self.case_counts, strict=True)], np.int64)

    def emit(self, data: bytes) -> None:
        self.history.extend(data)


def _categorical(weights: np.ndarray) -> constriction.stream.model.Categorical:
    return constriction.stream.model.Categorical(weights.astype(np.float64), perfect=False)


def _split_case(run: bytes) -> tuple[bytes, int] | None:
    """(lower-case word, case) for the three case patterns a dictionary word may take."""
    lower = run.lower()
    if run == lower:
        return lower, 0
    if run[:1].isupper() and run[1:] == lower[1:]:
        return lower, 1
    if run.isupper():
        return lower, 2
    return None


def encode_text(text: str) -> bytes:
    """Code a string; the result decodes with decode_text and carries its own end."""
    data = text.encode("utf-8")
    model = _Model()
    coder = constriction.stream.queue.RangeEncoder()

    def put(state: int, symbol: int) -> None:
        weights, keys = model.symbol_weights(state)
        coder.encode(symbol, _categorical(weights))
        model.update_symbol(keys, symbol)

    state, pos = START, 0
    while pos < len(data):
        if data[pos] not in _LETTERS:
            put(state, BYTE0 + data[pos])
            model.emit(data[pos : pos + 1])
            state, pos = START, pos + 1
            continue
        end = pos
        while end < len(data) and data[end] in _LETTERS:
            end += 1
        run = data[pos:end]
        split = _split_case(run)
        index = model.prior.rank.get(split[0]) if split else None
        if split is not None and index is not None:
            put(START, WORD)
            coder.encode(index, _categorical(model.word_weights()))
            coder.encode(split[1], _categorical(model.case_weights()))
            model.word_counts[index] = model.word_counts.get(index, 0) + 1
            model.case_counts[split[1]] += 1
            model.emit(run)
        else:
            put(START, SPELL)
            for byte in run:
                put(SPELLING, BYTE0 + byte)
                model.emit(bytes([byte]))
            put(SPELLING, END)
        state, pos = AFTER, end
    put(state, EOS)
    coded = _shortest(coder.get_compressed().astype(">u4").tobytes(), text)
    if len(data) > max_text_bytes(len(coded)):
        raise ValueError(f"text of {len(data)} bytes is too repetitive for the prompt coder's length bound")
    return coded


def decode_text(payload: bytes, limit: int | None = None) -> str:
    """Inverse of encode_text. Damaged input raises GcxFormatError (or decodes to some other string).

    A text is at most `max_text_bytes(len(payload))` bytes, so a hostile stream cannot make it run long."""
    limit = max_text_bytes(len(payload)) if limit is None else limit
    padded = payload + bytes(-len(payload) % 4)
    coder = constriction.stream.queue.RangeDecoder(np.frombuffer(padded, ">u4").astype(np.uint32))
    model = _Model()
    out = bytearray()

    def read(weights: np.ndarray) -> int:
        try:
            return int(coder.decode(_categorical(weights)))
        except Exception as exc:  # constriction refuses streams no encoder could have written
            raise GcxFormatError(f"damaged coded text ({exc})") from None

    def get(state: int) -> int:
        weights, keys = model.symbol_weights(state)
        symbol = read(weights)
        model.update_symbol(keys, symbol)
        return symbol

    state = START
    while True:
        if len(out) > limit:
            raise GcxFormatError(f"coded text longer than {limit} bytes")
        symbol = get(state)
        if symbol == EOS:
            break
        if symbol >= BYTE0:
            out.append(symbol - BYTE0)
            model.emit(bytes([symbol - BYTE0]))
            state = START
            continue
        if symbol == WORD:
            index = read(model.word_weights())
            case = read(model.case_weights())
            word = model.prior.words[index]
            run = word if case == 0 else word.upper() if case == 2 else word[:1].upper() + word[1:]
            model.word_counts[index] = model.word_counts.get(index, 0) + 1
            model.case_counts[case] += 1
            model.emit(run)
            out += run
        else:  # SPELL
            while (letter := get(SPELLING)) != END:
                out.append(letter - BYTE0)
                model.emit(bytes([letter - BYTE0]))
                if len(out) > limit:
                    raise GcxFormatError(f"coded text longer than {limit} bytes")
        state = AFTER
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise GcxFormatError("coded text is not valid UTF-8") from None


def _shortest(data: bytes, text: str) -> bytes:
    """The shortest stream that still decodes to the text: the decoder reads missing bytes as zeros, and
    the range coder's final word is more precise than the last symbols need, so a prefix of it, rounded
    down or up, often still lands inside the final interval. Every candidate is verified by decoding."""
    best = data.rstrip(b"\0")
    for cut in range(1, min(len(best), 5)):
        prefix = best[:-cut]
        rounded_up = (
            (int.from_bytes(prefix, "big") + 1).to_bytes(len(prefix), "big") if prefix and prefix[-1] != 0xFF else None
        )
        for candidate in (prefix.rstrip(b"\0"), rounded_up):
            if candidate is not None and len(candidate) < len(best) and _decodes_to(candidate, text):
                best = candidate
    return best


def _decodes_to(data: bytes, text: str) -> bool:
    try:
        return decode_text(data, limit=len(text.encode("utf-8"))) == text
    except Exception:  # a cut stream may run into an impossible symbol
        return False
