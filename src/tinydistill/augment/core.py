"""TinyBERT data augmentation of a task's training set, written in the input's own format.

For each replaceable word (alphabetic, not a stop word) K candidates: masked-LM predictions for single-piece words
when a masked-LM is given, word-vector neighbours otherwise; N copies per example, each slot replaced with
probability p; duplicates dropped; the original kept first. Sentence pairs: each side is augmented from the original
row while the other side stays original. Labels (and every other column) are carried over unchanged.
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from tinydistill.augment.masked_lm import MaskedLMCandidates
from tinydistill.augment.vectors import WordVectors, load_word_vectors
from tinydistill.augment.words import Slot, find_slots, make_variants
from tinydistill.config import AugmentConfig, Config, DataConfig
from tinydistill.data.readers import RawSplit, dev_given, held_out_dev, read_raw_split, read_split
from tinydistill.errors import TinyDistillError
from tinydistill.models import load_masked_lm
from tinydistill.outputs import METRICS_FILE, StagingDir, write_json
from tinydistill.tasks import task_info
from tinydistill.ui import say, track


@dataclass
class AugmentResult:
    """``data`` reads the augmented training set (and the original dev / test); ``metrics`` is what was done."""

    data: DataConfig
    metrics: dict


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


def _write_rows(path: Path, rows: list[dict], header: bool) -> None:
    """Rows in the format the file suffix names: .tsv as GLUE writes it (tab-separated, no quoting), .csv, .jsonl."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", encoding="utf-8", newline="") as fh:
        if path.suffix == ".jsonl":
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        elif path.suffix == ".tsv":  # fields came from tab-split lines, so they hold no tab or newline
            lines = ([columns] if header else []) + [[str(r.get(c, "")) for c in columns] for r in rows]
            fh.writelines("\t".join(fields) + "\n" for fields in lines)
        else:
            writer = csv.DictWriter(fh, columns, lineterminator="\n")
            if header:
                writer.writeheader()
            writer.writerows(rows)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.symlink(src.resolve(), dst)
    except OSError:
        import shutil

        shutil.copyfile(src, dst)


def _load_sources(cfg: AugmentConfig) -> tuple[WordVectors | None, MaskedLMCandidates | None]:
    vectors = load_word_vectors(cfg.word_vectors) if cfg.word_vectors else None
    masked_lm = (
        MaskedLMCandidates(*load_masked_lm(cfg.masked_lm), batch_size=cfg.batch_size, max_length=cfg.max_length)
        if cfg.masked_lm
        else None
    )
    return vectors, masked_lm


def augment_data(cfg: Config, out: str | Path) -> AugmentResult:
    """Augment the training split of ``cfg.data`` (after ``max_train_examples``) into folder ``out``.

    A GLUE folder becomes ``out/train.tsv`` plus links to the original dev / test files; a CSV / TSV / JSONL file
    becomes ``out/train.<same suffix>``. Regression tasks are passed through unless ``augment.regression``.
    """
    out, aug = Path(out), cfg.augment
    if cfg.data.hf_dataset:
        raise TinyDistillError(
            "augment reads local files only: save the Hugging Face dataset as JSONL "
            "(ds.to_json) and set data.train_file"
        )
    if held_out_dev(cfg.data) is not None:
        raise TinyDistillError(
            "augment with data.dev_fraction: a dev split held out of train would be drawn again from the augmented "
            "copies (copies of dev examples would train the student); give a dev file instead"
        )
    if not dev_given(cfg.data):
        say(
            "no dev data given: train on the augmented output with a dev file (a dev split held out of augmented "
            "data would hold copies of training examples)"
        )
    with StagingDir(out, "augment", cfg.input_paths(), cfg.overwrite) as tmp:
        task = task_info(cfg.data)
        if task.kind == "regression" and not aug.regression:
            say(
                f"{task.name} is a regression task: not augmented (as in TinyBERT); set augment.regression=true "
                "to force"
            )
            metrics = {"stage": "augment", "skipped": "regression task"}
            write_json(tmp / METRICS_FILE, metrics)
        elif task.kind == "token-classification":
            from tinydistill.augment.tagged import augment_tagged_into

            metrics = augment_tagged_into(cfg, task, tmp, _load_sources, _link_or_copy)
        else:
            metrics = _augment_into(cfg, task, tmp)
    if not metrics.get("skipped"):
        say(
            f"augmented {metrics['examples_in']:,} examples into {metrics['examples_out']:,} "
            f"({metrics['augment_seconds']:.1f} s, {metrics['texts_per_second']:.0f} texts/s) -> {out}"
        )
    return AugmentResult(augmented_data_config(cfg, out), metrics)


def _augment_into(cfg: Config, task, tmp: Path) -> dict:
    """Write the augmented training split into ``tmp``; returns its metrics."""
    aug = cfg.augment
    read_split(cfg.data, "train", task, seed=cfg.seed)  # validates texts and labels with the usual messages
    raw = read_raw_split(cfg.data, "train", seed=cfg.seed)
    t0 = time.perf_counter()
    vectors, masked_lm = _load_sources(aug)
    t1 = time.perf_counter()
    rows = augment_rows(raw, aug, cfg.seed, vectors, masked_lm)
    seconds = time.perf_counter() - t1
    source = Path(raw.source)
    if cfg.data.dir is not None:
        _write_rows(tmp / "train.tsv", rows, header=raw.glue.headerless_columns is None)
        for split in ("dev", "test"):
            if (Path(cfg.data.dir) / f"{split}.tsv").is_file():
                _link_or_copy(Path(cfg.data.dir) / f"{split}.tsv", tmp / f"{split}.tsv")
    else:
        _write_rows(tmp / f"train{source.suffix.lower()}", rows, header=True)
    texts_in = len(raw.rows) * (2 if raw.pair_column else 1)
    metrics = {
        "stage": "augment",
        "source": str(source),
        "examples_in": len(raw.rows),
        "examples_out": len(rows),
        "texts_in": texts_in,
        "load_seconds": round(t1 - t0, 2),
        "augment_seconds": round(seconds, 2),
        "texts_per_second": texts_in / max(seconds, 1e-9),
        "settings": aug.model_dump(exclude={"enabled"}),
    }
    write_json(tmp / METRICS_FILE, metrics)
    return metrics


def augmented_data_config(cfg: Config, out: str | Path) -> DataConfig:
    """The data config that reads an earlier :func:`augment_data` output in ``out`` (for a pipeline that resumes)."""
    out = Path(out)
    metrics = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
    if metrics.get("skipped"):
        return cfg.data
    if cfg.data.dir is not None:
        return cfg.data.model_copy(update={"dir": str(out), "max_train_examples": None})
    suffix = Path(metrics["source"]).suffix.lower()
    return cfg.data.model_copy(update={"train_file": str(out / f"train{suffix}"), "max_train_examples": None})
