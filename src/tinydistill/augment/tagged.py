"""TinyBERT augmentation of token-tagged sentences (NER): only words tagged ``O`` are replaced, never an entity's,
so every copy keeps its tags word for word. Written in the input's format (column file or JSONL), every other
column copied."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tinydistill.augment.texts import augment_metrics, augment_texts, link_or_copy
from tinydistill.augment.words import Slot, find_slots
from tinydistill.config import Config
from tinydistill.data.conll import Tagged


def outside_slots(words: list[str], tags: list[str]) -> list[Slot]:
    """The replaceable words of ``" ".join(words)`` that are tagged ``O`` (offsets into the joined text)."""
    slots, offset = [], 0
    for word, tag in zip(words, tags):
        if tag == "O":
            slots += [Slot(offset + s.start, offset + s.end, s.word) for s in find_slots(word) if s.word == word]
        offset += len(word) + 1
    return slots


def augment_sentences(data: Tagged, cfg, seed: int, vectors=None, masked_lm=None) -> list[list[list[str]]]:
    """Per sentence, its word lists: the original first, then each distinct augmented copy (same length)."""
    texts = [" ".join(w) for w in data.words]
    slots = [outside_slots(w, t) for w, t in zip(data.words, data.tags)]
    variants = augment_texts(texts, cfg, seed, vectors, masked_lm, tag="tokens", slots=slots)
    out = []
    for words, copies in zip(data.words, variants):
        split = [v.split(" ") for v in copies[1:]]
        out.append([words] + [s for s in split if len(s) == len(words)])  # a word that held a space: not realigned
    return out


def _write(path: Path, data: Tagged, sentences: list[list[list[str]]], tokens_column: str) -> int:
    """Every sentence and its copies in ``data``'s own format; returns how many sentences were written."""
    n = 0
    sep = "\t" if data.per_line and _tabbed(data) else " "
    with path.open("w", encoding="utf-8") as fh:
        for raw, copies in zip(data.raw, sentences):
            for words in copies:
                n += 1
                if data.per_line:  # column file: the word replaced in field 0, every other field as read
                    fh.writelines(sep.join([w, *fields[1:]]) + "\n" for w, fields in zip(words, raw))
                    fh.write("\n")
                else:
                    fh.write(json.dumps({**raw, tokens_column: words}, ensure_ascii=False) + "\n")
    return n


def _tabbed(data: Tagged) -> bool:
    with open(data.source, encoding="utf-8") as fh:
        return any("\t" in line for line, _ in zip(fh, range(50)))


def augment_tagged_into(cfg: Config, data: Tagged, tokens_column: str, tmp: Path, sources, others: list[Path]) -> dict:
    """Write the augmented sentences of ``data`` (a token task's training split, as kept) into ``tmp``, links to
    the ``others`` files (dev, test) beside them; returns its metrics. ``sources()`` loads the candidates."""
    aug = cfg.augment
    t0 = time.perf_counter()
    found = sources()
    t1 = time.perf_counter()
    sentences = augment_sentences(data, aug, cfg.seed, found.vectors, found.masked_lm)
    times = (t0, t1, time.perf_counter())
    source = Path(data.source)
    written = _write(tmp / f"train{source.suffix.lower()}", data, sentences, tokens_column)
    for other in others:
        link_or_copy(other, tmp / other.name)
    changed = {
        "entity_words_changed": sum(  # 0 unless something is wrong: only O-tagged words are candidates
            a != b
            for copies, tags in zip(sentences, data.tags)
            for c in copies[1:]
            for a, b, t in zip(copies[0], c, tags)
            if t != "O"
        ),
        "words_changed": sum(a != b for copies in sentences for c in copies[1:] for a, b in zip(copies[0], c)),
    }
    return augment_metrics(aug, source, (len(data.words), written, len(data.words)), times, **changed)
