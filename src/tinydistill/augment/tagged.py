"""TinyBERT augmentation of token-tagged sentences (NER): only words tagged ``O`` are replaced, never an entity's,
so every copy keeps its tags word for word. Written in the input's format (column file or JSONL), every other
column copied."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tinydistill.augment.words import Slot, find_slots
from tinydistill.config import Config
from tinydistill.data.conll import Tagged
from tinydistill.data.readers import kept_rows
from tinydistill.outputs import METRICS_FILE, write_json
from tinydistill.tasks.tokens import read_tagged, tagged_file


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
    from tinydistill.augment.core import augment_texts

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


def augment_tagged_into(cfg: Config, task, tmp: Path, load_sources, link) -> dict:
    """Write the augmented training split of a token task into ``tmp``; returns its metrics."""
    aug = cfg.augment
    task.read(cfg.data, "train", seed=cfg.seed)  # validates words and tags with the usual messages
    data = read_tagged(cfg.data, "train")
    keep = kept_rows(cfg.data, "train", len(data.words), cfg.seed)
    if keep is not None:
        data = Tagged(
            *([getattr(data, k)[i] for i in keep] for k in ("words", "tags", "where")),
            data.source,
            data.scheme,
            [data.raw[i] for i in keep],
            data.per_line,
        )
    t0 = time.perf_counter()
    vectors, masked_lm = load_sources(aug)
    t1 = time.perf_counter()
    sentences = augment_sentences(data, aug, cfg.seed, vectors, masked_lm)
    seconds = time.perf_counter() - t1
    source = Path(data.source)
    written = _write(tmp / f"train{source.suffix.lower()}", data, sentences, cfg.data.tokens_column)
    if cfg.data.dir is not None:
        for split in ("dev", "test"):
            other = tagged_file(cfg.data, split)
            if other is not None and other.is_file():
                link(other, tmp / other.name)
    metrics = {
        "stage": "augment",
        "source": str(source),
        "examples_in": len(data.words),
        "examples_out": written,
        "texts_in": len(data.words),
        "entity_words_changed": sum(  # 0 unless something is wrong: only O-tagged words are candidates
            a != b
            for copies, tags in zip(sentences, data.tags)
            for c in copies[1:]
            for a, b, t in zip(copies[0], c, tags)
            if t != "O"
        ),
        "words_changed": sum(a != b for copies in sentences for c in copies[1:] for a, b in zip(copies[0], c)),
        "load_seconds": round(t1 - t0, 2),
        "augment_seconds": round(seconds, 2),
        "texts_per_second": len(data.words) / max(seconds, 1e-9),
        "settings": aug.model_dump(exclude={"enabled"}),
    }
    write_json(tmp / METRICS_FILE, metrics)
    return metrics
