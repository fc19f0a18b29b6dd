"""Every family adapter, on tiny random configs, offline: captured scores reproduce the model's own attention,
hidden states are the ones ``output_hidden_states`` gives, copied-layer students load with plain transformers,
and a short intermediate + prediction distillation runs with each family as teacher and as student."""

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from tests.helpers import CONFIGS, SHAPE, distill_args, model_type_of, padded_batch, run_cli, slice_of, tiny_config
from tinydistill.capture import capture
from tinydistill.config import StudentConfig
from tinydistill.errors import TinyDistillError
from tinydistill.families import FAMILIES
from tinydistill.students import build_student
from tinydistill.tasks import SequenceClassification

TASK = SequenceClassification("sst-2", ["0", "1"], "accuracy")


def _implementations(case: str) -> list[str]:
    model = AutoModel.from_config(tiny_config(case))
    return ["eager", "sdpa"] if model.config._attn_implementation == "sdpa" else ["eager"]


CASES = [(t, impl) for t in CONFIGS for impl in _implementations(t)]


@pytest.mark.parametrize("case,implementation", CASES)
def test_captured_scores_reproduce_the_models_attention(case, implementation):
    torch.manual_seed(1)
    config = tiny_config(case)
    config._attn_implementation = "eager"
    model = AutoModel.from_config(config).eval()
    ids, mask = padded_batch()
    for rows in (slice(0, 1), slice(0, 2)):  # one row too: a batch of 1 broadcasts where a wrong shape would fail
        _check_scores(model, implementation, ids[rows], mask[rows])


def _check_scores(model, implementation, ids, mask):
    model_type = model.config.model_type
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True)
        model.config._attn_implementation = implementation
        with capture(model, [0, 1, 3], [1, 2, 3]) as rec:
            model(input_ids=ids, attention_mask=mask)
    assert model.config._attn_implementation == implementation  # restored
    worst = 0.0
    for layer in (1, 2, 3):
        scores = rec.scores[layer]
        allowed = rec.allowed[layer]
        if allowed is not None:
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        probs = scores.softmax(-1)
        worst = max(worst, (probs - reference.attentions[layer - 1]).abs().max().item())
    assert worst <= 1e-5, f"{model_type}/{implementation}: max |Δ| {worst:.2e}"
    for layer in (0, 1, 3):
        if model_type == "modernbert" and layer == 3:
            continue  # its last hidden state in output_hidden_states is after the final norm
        torch.testing.assert_close(rec.hidden[layer], reference.hidden_states[layer], atol=1e-5, rtol=0)


def test_modernbert_local_layers_hide_keys_outside_the_window():
    model = AutoModel.from_config(tiny_config("modernbert")).eval()
    ids, mask = padded_batch()
    with torch.no_grad(), capture(model, [], [1, 2]) as rec:
        model(input_ids=ids, attention_mask=mask)
    local, full = rec.allowed[2], rec.allowed[1]  # layer 2 (index 1) is local with global_attn_every_n_layers=2
    assert local is not None and not local[0, 0, 0, 9]  # token 9 is outside token 0's window
    assert full is None or full[0, 0, 0, 9]


@pytest.mark.parametrize("case", [t for t in CONFIGS if FAMILIES[model_type_of(t)].layer_key is not None])
def test_copied_teacher_layers_load_with_plain_transformers(tmp_path, case):
    torch.manual_seed(2)
    model_type = model_type_of(case)
    teacher = AutoModelForSequenceClassification.from_config(tiny_config(case, num_labels=2)).eval()
    student = build_student(StudentConfig(teacher_layers=[1, 3]), teacher, TASK)
    student.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.model_type == model_type and loaded.config.num_hidden_layers == 2
    t_layers = FAMILIES[model_type].layer_modules(teacher.base_model)
    s_layers = FAMILIES[model_type].layer_modules(loaded.base_model)
    for t, s in ((t_layers[0], s_layers[0]), (t_layers[2], s_layers[1])):
        for (name, a), (_, b) in zip(t.state_dict().items(), s.state_dict().items()):
            assert torch.equal(a, b), name


def test_albert_layers_are_shared_so_they_are_not_copied():
    teacher = AutoModelForSequenceClassification.from_config(tiny_config("albert", num_labels=2))
    with pytest.raises(TinyDistillError, match="share one set of weights"):
        build_student(StudentConfig(teacher_layers=[1]), teacher, TASK)


def _save(model, tokenizer, path):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _distill_both(teacher_dir, glue, out, student):
    steps = ["intermediate.train.max_steps=2", "prediction.train.max_steps=2"]
    steps += ["intermediate.train.batch_size=8", "prediction.train.batch_size=8"]
    settings = [f"student={student}", *slice_of(16, 8, 16), "report.enabled=false", *steps]
    return distill_args(teacher_dir, out, *settings, stage="both", data=glue / "SST-2")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CONFIGS))
def test_each_family_distils_as_teacher_and_as_student(
    monkeypatch, capsys, tmp_path, tokenizer, glue, tiny_classifier_dir, case
):
    torch.manual_seed(3)
    model_type = model_type_of(case)
    labels = {"id2label": {0: "0", 1: "1"}, "label2id": {"0": 0, "1": 1}}
    teacher = _save(
        AutoModelForSequenceClassification.from_config(tiny_config(case, **labels)),
        tokenizer,
        tmp_path / "teacher",
    )
    # as teacher: a student of its own family, half its depth, same heads (attention distillation on)
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        *_distill_both(teacher, glue, tmp_path / "as_teacher", "{layers: 1, hidden: 16, heads: 4, ffn: 32}"),
    )
    assert code == 0, err
    # as student: a BERT teacher into a student of this family
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        *_distill_both(
            tiny_classifier_dir,
            glue,
            tmp_path / "as_student",
            f"{{layers: 2, hidden: 16, heads: 4, ffn: 32, family: {model_type}}}",
        ),
    )
    assert code == 0, err
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "as_student" / "prediction")
    assert loaded.config.model_type == model_type


def test_a_family_without_an_adapter_gets_hidden_states_but_no_attention():
    config = AutoConfig.for_model("bert", **{k: v for k, v in SHAPE.items()})
    config.model_type = "made-up"  # stands for any family with no adapter
    model = AutoModel.from_config(AutoConfig.for_model("bert", **SHAPE)).eval()
    model.config.model_type = "made-up"
    ids, mask = padded_batch()
    with torch.no_grad(), capture(model, [0, 2], []) as rec:
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(rec.hidden[2], out.hidden_states[2])
    with pytest.raises(TinyDistillError, match="attention distillation needs a family adapter.*supported: albert"):
        with capture(model, [], [1]):
            pass


@pytest.mark.parametrize(
    "student,msg",
    [
        ("{layers: 1, hidden: 30, heads: 4, ffn: 32, family: bert}", "hidden (30) must be a multiple of heads (4)"),
        ("{layers: 1, hidden: 16, heads: 4, ffn: 32, family: bertt}", "'bertt' is not a model type transformers knows"),
    ],
)
def test_bad_student_family_settings_get_one_line(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue, student, msg
):
    code, _, err = run_cli(monkeypatch, capsys, *_distill_both(tiny_classifier_dir, glue, tmp_path / "o", student))
    assert code == 2 and msg in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "prediction").exists()
