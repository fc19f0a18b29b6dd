"""STS-B regression through distillation; TensorBoard scalars; the Hugging Face datasets reader."""

import json
import sys
import types

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import BertForSequenceClassification

from tests.conftest import tiny_bert_config
from tinydistill.config import DataConfig, load_config
from tinydistill.data.readers import read_split
from tinydistill.stages import distill
from tinydistill.tasks import task_info


@pytest.fixture(scope="module")
def regression_teacher(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("stsb_teacher")
    torch.manual_seed(2)
    BertForSequenceClassification(
        tiny_bert_config(tokenizer.vocab_size, num_labels=1, problem_type="regression")
    ).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_stsb_regression_distillation_and_tensorboard_scalars(tmp_path, regression_teacher, glue):
    cfg = load_config(
        None,
        [
            f"teacher={regression_teacher}",
            "data.task=sts-b",
            f"data.dir={glue / 'STS-B'}",
            "data.max_train_examples=64",
            "data.max_eval_examples=48",
            "data.max_length=32",
            "student={layers: 2, hidden: 16, heads: 4, ffn: 32}",
            "prediction.train.epochs=2",
            "prediction.train.batch_size=16",
            "prediction.train.learning_rate=3e-3",
            "prediction.losses.hard_weight=0.5",
            "prediction.losses.hidden_weight=1",
            "prediction.train.log_every=1",
        ],
    )
    out = distill(cfg, "prediction", tmp_path / "s")
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["dev"]) >= {"pearson", "spearman"}
    assert metrics["objective_after"]["total"] < metrics["objective_before"]["total"]
    assert metrics["objective_after"]["hard"] < metrics["objective_before"]["hard"]  # MSE to the gold scores
    assert json.loads((out / "config.json").read_text())["problem_type"] == "regression"
    events = EventAccumulator(str(next((out / "logs").rglob("events.out.tfevents.*")))).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/soft", "train/hard", "train/hidden", "train/loss", "train/lr", "eval/pearson"} <= tags
    assert len(events.Scalars("train/soft")) == metrics["steps"]


def test_hf_datasets_reader_maps_class_label_names(monkeypatch):
    class Feature:
        names = ["negative", "positive"]

    class FakeSplit:
        features = {"label": Feature()}

        def to_list(self):
            return [{"sentence": "good", "label": 1}, {"sentence": "bad", "label": 0}]

    calls = []
    fake = types.SimpleNamespace(load_dataset=lambda *a, **k: calls.append((a, k)) or FakeSplit())
    monkeypatch.setitem(sys.modules, "datasets", fake)
    cfg = DataConfig(
        task="classification", hf_dataset="stanfordnlp/sst2", text_column="sentence", labels=["negative", "positive"]
    )
    ex = read_split(cfg, "dev", task_info(cfg))
    assert ex.texts == ["good", "bad"] and ex.labels == [1, 0]
    assert calls[0] == (("stanfordnlp/sst2", None), {"split": "validation"})
