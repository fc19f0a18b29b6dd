"""Details of training that were each wrong once: fp32 teacher targets in a bf16 step, weights loaded in fp32, the
teacher-logit pass on the training device, the logged loss under gradient accumulation, projections carried from
stage 1."""

import json

import pytest
import torch
from transformers import AutoConfig, BertForSequenceClassification, BertModel

from tests.conftest import tiny_bert_config
from tests.helpers import SMALL_STUDENT, config_of, distill_args, run_cli
from tinydistill.cache import teacher_fingerprint
from tinydistill.capture import capture
from tinydistill.config import LossConfig
from tinydistill.models import load_backbone, load_classifier
from tinydistill.objectives import build_terms
from tinydistill.tasks import SequenceClassification
from tinydistill.terms import Setup
from tinydistill.trainer import Trainee, _step_losses


def test_teacher_scores_stay_fp32_inside_a_bf16_student_step():
    torch.manual_seed(0)
    teacher, student = BertModel(tiny_bert_config(100)).eval(), BertModel(tiny_bert_config(100))
    ids, mask = torch.randint(5, 100, (2, 7)), torch.ones(2, 7, dtype=torch.long)
    terms = build_terms(LossConfig(attention_weight=1.0), Setup([(1, 2)], None, 1, 2), has_teacher=True)
    with capture(student, [], [1]) as s_rec, capture(teacher, [], [2]) as t_rec:
        trainee = Trainee(student, torch.nn.ModuleDict())
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the student's mixed precision
            _step_losses(trainee, teacher, {"input_ids": ids, "attention_mask": mask}, terms, (s_rec, t_rec), "no")
        assert t_rec.score(2).dtype == torch.float32 and s_rec.score(1).dtype == torch.bfloat16
        with torch.no_grad():
            teacher(input_ids=ids, attention_mask=mask)  # fp32, no autocast
        exact = t_rec.score(2).clone()
    with capture(teacher, [], [2]) as again, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        pass
    assert again.scores == {} and torch.isfinite(exact).all()


def test_a_model_saved_in_bf16_loads_in_fp32_and_fingerprints(tmp_path):
    config = tiny_bert_config(100, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})
    BertForSequenceClassification(config).to(torch.bfloat16).save_pretrained(tmp_path / "clf")
    BertModel(tiny_bert_config(100)).to(torch.bfloat16).save_pretrained(tmp_path / "bare")
    assert AutoConfig.from_pretrained(tmp_path / "clf").dtype == torch.bfloat16  # saved as bf16
    clf = load_classifier(str(tmp_path / "clf"), SequenceClassification("sst-2", ["0", "1"], "accuracy"))
    assert {p.dtype for p in clf.parameters()} == {torch.float32}
    assert {p.dtype for p in load_backbone(str(tmp_path / "bare")).parameters()} == {torch.float32}
    assert len(teacher_fingerprint(clf.to(torch.bfloat16))) == 64  # any dtype hashes


def _prediction(teacher, glue, out, rows: int, steps: int) -> list[str]:
    """A tiny prediction-layer distillation on an SST-2 slice."""
    settings = [f"prediction.train.max_steps={steps}", "report.enabled=false", SMALL_STUDENT]
    return distill_args(
        teacher, out, f"data.max_train_examples={rows}", "data.max_eval_examples=8", *settings, data=glue / "SST-2"
    )


@pytest.mark.slow
def test_the_teacher_logit_pass_runs_where_the_stage_trains(monkeypatch, capsys, tmp_path, confident_teacher, glue):
    import tinydistill.reuse as reuse
    import tinydistill.stages.task_distillation as distill_stage

    moves, seen = [], []
    real, real_to = reuse.teacher_logits, torch.nn.Module.to

    def to(module, *args, **kwargs):
        moves.append((module, args[0] if args else kwargs.get("device")))
        return real_to(module, *args, **kwargs)

    def spy(teacher, *args, **kwargs):
        seen.append([d for m, d in moves if m is teacher])  # where the teacher was sent before the pass
        return real(teacher, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    monkeypatch.setattr(reuse, "teacher_logits", spy)
    monkeypatch.setattr(distill_stage, "device", lambda _cfg: torch.device("cpu", 0))  # stands for the accelerator
    code, _, err = run_cli(monkeypatch, capsys, *_prediction(confident_teacher, glue, tmp_path / "o", 16, 1))
    assert code == 0, err
    assert len(seen) == 1 and seen[0][-1:] == [torch.device("cpu", 0)]


@pytest.mark.slow
def test_with_gradient_accumulation_the_logged_loss_is_the_steps_mean(tmp_path, confident_teacher, glue):
    from tinydistill.stages import distill
    from tinydistill.trainer import Callback

    parts = []

    class Record(Callback):
        def on_micro_step(self, state, loss):
            parts.append(loss.item())

    args = [
        *_prediction(confident_teacher, glue, tmp_path / "o", 32, 2),
        *("-s", "prediction.train.batch_size=8", "-s", "prediction.train.grad_accum_steps=2"),
        *("-s", "prediction.train.log_every=1"),
    ]
    distill(config_of(args), "prediction", callbacks=[Record()])
    history = json.loads((tmp_path / "o" / "metrics.json").read_text())["history"]
    assert len(parts) == 4 and parts[0] != parts[1]
    for row, (a, b) in zip(history, [parts[0:2], parts[2:4]]):
        assert abs(row["loss"] - (a + b) / 2) < 1e-6 and abs(row["soft"] - row["loss"]) < 1e-6


@pytest.mark.slow
def test_stage_3_starts_from_stage_1s_projections_unless_told_not_to(tmp_path, finished_run):
    from safetensors.torch import load_file

    from tinydistill import stages
    from tinydistill.trainer import Callback

    cfg, run, _ = finished_run
    saved = load_file(str(run / "1-general" / "training_state" / "projections.safetensors"))
    started = []

    class Spy(Callback):
        def on_train_begin(self, state, stage_run):
            started.append({k: v.clone() for k, v in stage_run.projections.state_dict().items()})

    base = cfg.model_copy(
        update={
            "teacher": str(run / "2-teacher"),
            "student": cfg.student.model_copy(
                update={
                    "checkpoint": str(run / "1-general"),
                    "layers": None,
                    "hidden": None,
                    "heads": None,
                    "ffn": None,
                }
            ),
        }
    )
    for carry in (True, False):
        stage = base.intermediate.model_copy(update={"carry_projections": carry})
        out = tmp_path / f"carry-{carry}"
        stages.distill(base.model_copy(update={"intermediate": stage}), "intermediate", out, callbacks=[Spy()])
    carried, fresh = started
    assert set(carried) == set(saved) and all(torch.equal(carried[k], saved[k]) for k in saved)
    assert not any(torch.equal(fresh[k], saved[k]) for k in saved)
