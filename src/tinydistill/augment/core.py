"""``tinydistill augment``: TinyBERT data augmentation of a task's training set, written in the input's own format
(task qa: a JSONL table).
What is augmented and how it is written is the task's (``Task.augment_into``); the algorithm is in
:mod:`tinydistill.augment.texts`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinydistill.augment.masked_lm import MaskedLMCandidates
from tinydistill.augment.texts import Sources
from tinydistill.augment.vectors import load_word_vectors
from tinydistill.config import AugmentConfig, Config, DataConfig
from tinydistill.data.readers import dev_given, held_out_dev
from tinydistill.errors import TinyDistillError
from tinydistill.models import load_masked_lm
from tinydistill.outputs import METRICS_FILE, StagingDir, write_json
from tinydistill.tasks import task_info
from tinydistill.ui import say


@dataclass
class AugmentResult:
    """``data`` reads the augmented training set (and the original dev / test); ``metrics`` is what was done."""

    data: DataConfig
    metrics: dict


def load_sources(cfg: AugmentConfig) -> Sources:
    """The word vectors and the masked LM the augmentation settings name."""
    vectors = load_word_vectors(cfg.word_vectors) if cfg.word_vectors else None
    masked_lm = (
        MaskedLMCandidates(*load_masked_lm(cfg.masked_lm), batch_size=cfg.batch_size, max_length=cfg.max_length)
        if cfg.masked_lm
        else None
    )
    return Sources(vectors, masked_lm)


def augment_data(cfg: Config, out: str | Path) -> AugmentResult:
    """Augment the training split of ``cfg.data`` (after ``max_train_examples``) into folder ``out``.

    A GLUE folder becomes ``out/train.tsv`` plus links to the original dev / test files; a CSV / TSV / JSONL file
    becomes ``out/train.<same suffix>``; task qa writes ``out/train.jsonl``. Regression tasks are passed through unless
    ``augment.regression``.
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
        metrics = task.augment_into(cfg, tmp, lambda: load_sources(aug))
        write_json(tmp / METRICS_FILE, metrics)
    if not metrics.get("skipped"):
        say(
            f"augmented {metrics['examples_in']:,} examples into {metrics['examples_out']:,} "
            f"({metrics['augment_seconds']:.1f} s, {metrics['texts_per_second']:.0f} texts/s) -> {out}"
        )
    return AugmentResult(augmented_data_config(cfg, out), metrics)


def augmented_data_config(cfg: Config, out: str | Path) -> DataConfig:
    """The data config that reads an earlier :func:`augment_data` output in ``out`` (for a pipeline that resumes)."""
    out = Path(out)
    metrics = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
    if metrics.get("skipped"):
        return cfg.data
    if cfg.data.dir is not None:
        return cfg.data.model_copy(update={"dir": str(out), "max_train_examples": None})
    name = metrics.get("train_file") or f"train{Path(metrics['source']).suffix.lower()}"
    block = cfg.data.train.model_copy(update={"file": None}) if cfg.data.train is not None else None
    return cfg.data.model_copy(update={"train_file": str(out / name), "train": block, "max_train_examples": None})
