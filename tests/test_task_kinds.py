"""The task-kind extension point: a kind registered from this file alone (its name, its own settings section of the
data config, how it reads and labels its data) trains through ``distill`` like a built-in one; the built-in kinds
answer for their names, sections and saved models."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import BaseModel, ConfigDict
from transformers import BertForSequenceClassification

from tests.conftest import tiny_bert_config
from tinydistill.config import load_config
from tinydistill.data.readers import Examples, kept_rows, read_transfer, subset
from tinydistill.errors import TinyDistillError
from tinydistill.registry import KINDS, kind_named, register_kind
from tinydistill.tasks import SequenceClassification, task_info, task_of_model


class LengthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: int = 4


class TextLength(SequenceClassification):
    """A toy kind: is a text longer than ``data.length.threshold`` words? The labels come from the texts."""

    kind = "text-length"
    aliases = ("length",)
    settings_key = "length"
    settings_model = LengthSettings

    @classmethod
    def recognises(cls, config, folder) -> bool:
        return False

    @classmethod
    def from_data(cls, cfg, name):
        return cls(name, ["long", "short"], "accuracy", cls.settings_of(cfg))

    def read(self, cfg, split, seed=0, require_labels=True):
        path = {"train": cfg.train_file, "dev": cfg.dev_file, "test": cfg.test_file}[split]
        texts = read_transfer(cfg, path, None, f"{split} file").texts
        ex = Examples(texts, None, self.label_ids(texts, path), path)
        keep = kept_rows(cfg, split, len(ex), seed)
        return ex if keep is None else subset(ex, keep)

    def label_ids(self, raw, source):
        return [int(len(t.split()) <= self.settings.threshold) for t in raw]


@pytest.fixture
def length_kind():
    register_kind(TextLength)
    yield TextLength
    KINDS.pop(TextLength.kind)


def _texts(path, n):
    words = "the film was a quiet and patient study of grief told with care".split()
    path.write_text("".join(" ".join(words[: 2 + i % 10]) + "\n" for i in range(n)), encoding="utf-8")
    return path


def test_a_kind_registered_from_a_test_file_trains_through_distill(tmp_path, tokenizer, length_kind):
    from tinydistill.stages import distill

    torch.manual_seed(0)
    teacher = tmp_path / "teacher"
    labels = {"id2label": {0: "long", 1: "short"}, "label2id": {"long": 0, "short": 1}}
    BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, **labels)).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    cfg = load_config(
        None,
        [
            f"teacher={teacher}",
            "data.task=length",
            f"data.train_file={_texts(tmp_path / 'train.txt', 64)}",
            f"data.dev_file={_texts(tmp_path / 'dev.txt', 16)}",
            "data.length={threshold: 6}",
            "data.max_length=16",
            "student={layers: 1, hidden: 16, heads: 4, ffn: 32}",
            "prediction.train.max_steps=4",
            "prediction.train.batch_size=16",
            "report.enabled=false",
        ],
    )
    task = task_info(cfg.data)
    assert isinstance(task, TextLength) and task.settings.threshold == 6
    assert task.read(cfg.data, "dev").labels[:6] == [1, 1, 1, 1, 1, 0]  # 2..7 words: the sixth is long
    out = distill(cfg, "prediction", tmp_path / "student")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and 0 <= metrics["dev"]["accuracy"] <= 1
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "long", "1": "short"}


def test_a_kinds_section_is_validated_and_refused_when_unknown(length_kind):
    with pytest.raises(TinyDistillError, match=r"data.length.threshold: Input should be a valid integer"):
        load_config(None, ["data.length={threshold: many}"])
    with pytest.raises(TinyDistillError, match=r"data.lenght: unknown key \(did you mean 'length'\?\)"):
        load_config(None, ["data.lenght={threshold: 3}"])


def test_a_kind_whose_names_are_taken_is_refused():
    class Clash(SequenceClassification):
        kind = "clash"
        aliases = ("ner",)

    with pytest.raises(TinyDistillError, match="kind 'clash': ner already belongs to kind 'token-classification'"):
        register_kind(Clash)
    assert "clash" not in KINDS


def test_built_in_kinds_answer_for_their_names_sections_and_saved_models(tmp_path, capsys):
    assert kind_named("NER").kind == "token-classification" and kind_named("sentence_embedding").kind == "embedding"
    cfg = load_config(None, ["data.task=ner", "data.tag_scheme=iob1", "data.embedding_loss=cosine"])
    assert cfg.data.ner.tag_scheme == "iob1" and cfg.data.embedding.loss == "cosine"  # old keys still work
    out = capsys.readouterr().out
    assert (
        "data.tag_scheme is now data.ner.tag_scheme" in out and "data.embedding_loss is now data.embedding.loss" in out
    )
    from transformers import BertConfig

    assert task_of_model(BertConfig(architectures=["BertForTokenClassification"])).kind == "token-classification"
    assert task_of_model(BertConfig(problem_type="regression")).kind == "regression"
    assert task_of_model(BertConfig(architectures=["BertForSequenceClassification"])).kind == "classification"
    (tmp_path / "modules.json").write_text("[]")
    assert task_of_model(BertConfig(), tmp_path).kind == "embedding"
