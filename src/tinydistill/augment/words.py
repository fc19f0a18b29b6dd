"""The word-level half of TinyBERT's augmentation: which words may be replaced, and the copies made from candidates.

Pure functions, no models: :func:`find_slots` picks the replaceable words of a text, :func:`make_variants` draws the
augmented copies from per-slot candidate lists. Text outside the replaced words is kept byte for byte.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_TOKEN = re.compile(r"\S+")
_CORE = re.compile(r"^([^\w]*)([^\W\d_]+)([^\w]*)$")  # punctuation, an alphabetic word, punctuation


@dataclass(frozen=True)
class Slot:
    """A replaceable word: ``text[start:end] == word``."""

    start: int
    end: int
    word: str


def find_slots(text: str, stop_words: frozenset[str] = ENGLISH_STOP_WORDS) -> list[Slot]:
    """The alphabetic, non-stop-word words of ``text`` (surrounding punctuation is not part of the word)."""
    slots = []
    for token in _TOKEN.finditer(text):
        core = _CORE.match(token.group())
        if core and core.group(2).lower() not in stop_words:
            start = token.start() + len(core.group(1))
            slots.append(Slot(start, start + len(core.group(2)), core.group(2)))
    return slots


def with_word(text: str, slot: Slot, word: str) -> str:
    """``text`` with the word at ``slot`` replaced by ``word``."""
    return text[: slot.start] + word + text[slot.end :]


def _match_case(candidate: str, original: str) -> str:
    if original.isupper() and len(original) > 1:
        return candidate.upper()
    return candidate.capitalize() if original[0].isupper() else candidate


def make_variants(
    text: str, slots: list[Slot], candidates: list[list[str]], copies: int, probability: float, rng: random.Random
) -> list[str]:
    """The original text first, then up to ``copies`` distinct augmented texts.

    As TinyBERT: ``copies`` draws, each replacing every slot that has candidates with probability ``probability``
    by one of them (chosen uniformly); a draw equal to an earlier text is dropped.
    """
    choices = [(slot, cands) for slot, cands in zip(slots, candidates) if cands]
    seen = {text}
    out = [text]
    for _ in range(copies):
        pieces, last = [], 0
        for slot, cands in choices:
            word = rng.choice(cands)
            if rng.random() < probability:
                pieces += [text[last : slot.start], _match_case(word, slot.word)]
                last = slot.end
        new = "".join(pieces) + text[last:]
        if new not in seen:
            seen.add(new)
            out.append(new)
    return out
