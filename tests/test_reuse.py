"""How a task stage reuses its teacher (tinydistill.reuse): its logits when they are its only signal, its recorded
layers when every live term can replay them, live otherwise; and how many times a stage reads each row."""

import pytest
import torch
from torch import nn

from tinydistill.config import DistillStage, LossConfig, TrainConfig
from tinydistill.reuse import TeacherReuse, passes


def _reuse(cache="auto", teacher=True, **losses) -> TeacherReuse:
    stage = DistillStage(train=TrainConfig(), losses=LossConfig(**losses), teacher_cache=cache)
    model = nn.Linear(1, 1)
    return TeacherReuse(stage, model if teacher else None, None, model, None, torch.device("cpu"), None)


@pytest.mark.parametrize(
    "cache, losses, kind",
    [
        ("auto", {"soft_weight": 1, "hard_weight": 1}, "logits"),
        ("auto", {"hard_weight": 1}, None),  # nothing of the teacher's is read
        ("auto", {"hidden_weight": 1, "attention_weight": 1, "soft_weight": 1}, "targets"),
        (True, {"embedding_weight": 1}, "targets"),
        ("auto", {"relation_weight": 1, "mode": "tinybert"}, "targets"),  # relations read real tokens in every mode
        ("auto", {"hidden_weight": 1, "mode": "tinybert"}, None),  # reads the teacher at padding too
        (False, {"soft_weight": 1}, None),
    ],
)
def test_the_reuse_follows_the_terms_and_the_setting(cache, losses, kind):
    reuse = _reuse(cache, **losses)
    assert reuse.kind == kind
    assert reuse.replaces_teacher == (kind == "logits")  # targets replace it only once a store is attached


def test_terms_that_cannot_replay_are_named_and_no_teacher_means_nothing_to_reuse(capsys):
    assert _reuse(hidden_weight=1, attention_weight=1, mode="tinybert").kind is None
    out = "".join(capsys.readouterr())
    assert "hidden, attention" in out and "the teacher runs live" in out
    assert _reuse(teacher=False, soft_weight=1).kind is None


def test_passes_counts_epochs_or_max_steps_worth_of_rows():
    assert passes(TrainConfig(epochs=3), 1000) == 3.0
    assert passes(TrainConfig(max_steps=100, batch_size=32), 1600) == 2.0
    assert passes(TrainConfig(max_steps=10, batch_size=8, grad_accum_steps=4), 640) == 0.5
