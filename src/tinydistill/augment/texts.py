"""TinyBERT augmentation of texts and of a table's rows, below the task kinds that use it: for each replaceable word
(alphabetic, not a stop word) K candidates: masked-LM predictions for single-piece words when a masked-LM is given,
word-vector neighbours otherwise; N copies per example, each slot replaced with probability p; duplicates dropped;
the original kept first. Sentence pairs: each side is augmented from the original row while the other side stays
original. Labels (and every other column) are carried over unchanged."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tinydistill.augment.masked_lm import MaskedLMCandidates
from tinydistill.augment.vectors import WordVectors
from tinydistill.augment.words import Slot, find_slots, make_variants
from tinydistill.config import AugmentConfig, Config
from tinydistill.data.readers import RawSplit, read_raw_split
from tinydistill.ui import track


@dataclass
class Sources:
    """Where candidates come from: word vectors, a masked LM, or both."""

    vectors: WordVectors | None = None
    masked_lm: MaskedLMCandidates | None = None


def augment_texts(
    texts: list[str],
    cfg: AugmentConfig,
    seed: int,
    vectors: WordVectors | None = None,
    masked_lm: MaskedLMCandidates | None = None,
    tag: str = "",
    slots: list[list[Slot]] | None = None,
) -> list[list[str]]:
    """Each text's variants, the original first. Deterministic: text i draws from its own generator seeded by
    (seed, tag, i), so the result does not depend on batching or on the other texts. ``slots``: the words that may
    be replaced (default: every alphabetic, non-stop word)."""
    slots = slots if slots is not None else [find_slots(t) for t in texts]
    candidates: list[list[list[str]]] = [[[] for _ in s] for s in slots]
    mlm_queries, vector_slots = [], []
    for i, row in enumerate(slots):
        for j, slot in enumerate(row):
            if masked_lm is not None and masked_lm.is_single_piece(slot.word):
                mlm_queries.append((i, j))
            elif vectors is not None:
                vector_slots.append((i, j))
    if mlm_queries:
        found = masked_lm.candidates([(texts[i], slots[i][j]) for i, j in mlm_queries], cfg.candidates)
        for (i, j), words in zip(mlm_queries, found):
            candidates[i][j] = words
    if vector_slots:
        near = vectors.neighbours([slots[i][j].word for i, j in vector_slots], cfg.candidates)
        for i, j in vector_slots:
            candidates[i][j] = near.get(slots[i][j].word.lower(), [])
    return [
        make_variants(text, slots[i], candidates[i], cfg.copies, cfg.probability, random.Random(f"{seed}:{tag}:{i}"))
        for i, text in track(list(enumerate(texts)), f"augmenting {tag or 'texts'}")
    ]


def augment_rows(
    raw: RawSplit,
    cfg: AugmentConfig,
    seed: int,
    vectors: WordVectors | None = None,
    masked_lm: MaskedLMCandidates | None = None,
) -> list[dict]:
    """The augmented rows: per input row, the original and then its variants, every other column copied."""
    text_col, pair_col = raw.text_column, raw.pair_column
    firsts = augment_texts([str(r[text_col]) for r in raw.rows], cfg, seed, vectors, masked_lm, tag=text_col)
    seconds = (
        augment_texts([str(r[pair_col]) for r in raw.rows], cfg, seed, vectors, masked_lm, tag=pair_col)
        if pair_col
        else None
    )
    out = []
    for i, row in enumerate(raw.rows):
        out.append(row)
        out += [{**row, text_col: v} for v in firsts[i][1:]]
        if seconds is not None:
            out += [{**row, pair_col: v} for v in seconds[i][1:]]
    return out


def write_rows(
    path: Path, rows: list[dict], header: bool, delimiter: str | None = None, quoting: bool | None = None
) -> None:
    """Rows in the format the file suffix names, as they were read (``delimiter``, ``quoting``: data.delimiter and
    data.quoting): .jsonl; .tsv / .txt as GLUE writes it (tab-separated, no quoting) unless ``quoting``; .csv quoted
    where needed unless ``quoting`` is false."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", encoding="utf-8", newline="") as fh:
        if path.suffix == ".jsonl":
            fh.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
            return
        lines = ([columns] if header else []) + [[str(r.get(c, "")) for c in columns] for r in rows]
        tsv = path.suffix in (".tsv", ".txt")
        if tsv and not quoting:  # fields came from tab-split lines, so they hold no tab or newline
            fh.writelines("\t".join(fields) + "\n" for fields in lines)
            return
        quote = csv.QUOTE_NONE if quoting is False else csv.QUOTE_MINIMAL
        writer = csv.writer(fh, delimiter=delimiter or ("\t" if tsv else ","), quoting=quote, lineterminator="\n")
        writer.writerows(lines)


def output_name(source: Path) -> str:
    """The augmented training file's name: the source's own suffix where its rows are written back in that format
    (CSV, TSV, JSONL), else JSONL (a JSON array, Parquet, a saved dataset)."""
    suffix = source.suffix.lower()
    return f"train{suffix}" if suffix in (".csv", ".tsv", ".txt", ".jsonl") and source.is_file() else "train.jsonl"


def link_or_copy(src: Path, dst: Path) -> None:
    """A link to ``src`` at ``dst`` (a copy where links cannot be made)."""
    try:
        os.symlink(src.resolve(), dst)
    except OSError:
        shutil.copyfile(src, dst)


def augment_table_into(cfg: Config, task, tmp: Path, sources) -> dict:
    """Write the augmented training split of a one-label-per-text task into ``tmp`` (GLUE folder, CSV / TSV /
    JSONL, as read); returns its metrics. ``sources()`` loads the candidates' :class:`Sources`."""
    aug = cfg.augment
    task.read(cfg.data, "train", seed=cfg.seed)  # validates texts and labels with the usual messages
    raw = read_raw_split(cfg.data, "train", seed=cfg.seed)
    t0 = time.perf_counter()
    found = sources()
    t1 = time.perf_counter()
    rows = augment_rows(raw, aug, cfg.seed, found.vectors, found.masked_lm)
    times = (t0, t1, time.perf_counter())
    source, written = Path(raw.source), {}
    if cfg.data.dir is not None:
        write_rows(tmp / "train.tsv", rows, header=raw.glue.headerless_columns is None)
        for split in ("dev", "test"):
            if (Path(cfg.data.dir) / f"{split}.tsv").is_file():
                link_or_copy(Path(cfg.data.dir) / f"{split}.tsv", tmp / f"{split}.tsv")
    else:
        read, written = cfg.data.for_split("train"), {"train_file": output_name(source)}
        write_rows(tmp / written["train_file"], rows, read.header, read.delimiter, read.quoting)
    texts_in = len(raw.rows) * (2 if raw.pair_column else 1)
    return augment_metrics(aug, source, (len(raw.rows), len(rows), texts_in), times, **written)


def augment_metrics(
    aug: AugmentConfig, source: str | Path, counts: tuple[int, int, int], times: tuple[float, ...], **extra
) -> dict:
    """An augmentation's metrics.json: ``counts`` (examples in, examples out, texts in), ``times`` (perf_counter
    before loading the candidates, after it, after augmenting) and the ``extra`` keys of its task."""
    (examples_in, examples_out, texts_in), (t0, t1, t2) = counts, times
    return {
        "stage": "augment",
        "source": str(source),
        **extra,
        "examples_in": examples_in,
        "examples_out": examples_out,
        "texts_in": texts_in,
        "load_seconds": round(t1 - t0, 2),
        "augment_seconds": round(t2 - t1, 2),
        "texts_per_second": texts_in / max(t2 - t1, 1e-9),
        "settings": aug.model_dump(exclude={"enabled"}),
    }
