"""MiniLM's relation and attention KL against hand-written references, Q/K/V capture in every family, the
relation term in a real stage, and the loss registry opened from outside the package."""

import json
import math

import pytest
import torch
from transformers import AutoModel, BertModel

from tests.conftest import tiny_bert_config
from tests.helpers import CONFIGS, corpus_file, model_type_of, padded_batch, tiny_config
from tinydistill import losses as L
from tinydistill import objectives
from tinydistill.capture import capture
from tinydistill.config import LossConfig, load_config
from tinydistill.errors import TinyDistillError
from tinydistill.families import FAMILIES
from tinydistill.registry import REGISTRY, Option, TermSpec, register_term
from tinydistill.terms import CapturePlan, Setup


def _kl_rows(ps: torch.Tensor, pt: torch.Tensor) -> list[float]:
    return [float((pt[i] * (pt[i].log() - ps[i].log())).sum()) for i in range(len(pt))]


def _reference_relation(s, t, mask, heads):
    """Loops over sentences, relation heads and real queries; padding cut off (right-padded batches)."""
    rows = []
    for b in range(len(s)):
        n = int(mask[b].sum())
        ds, dt = s.shape[-1] // heads, t.shape[-1] // heads
        for r in range(heads):
            xs, xt = s[b, :n, r * ds : (r + 1) * ds].double(), t[b, :n, r * dt : (r + 1) * dt].double()
            ps = torch.softmax(xs @ xs.T / math.sqrt(ds), -1)
            pt = torch.softmax(xt @ xt.T / math.sqrt(dt), -1)
            rows += _kl_rows(ps, pt)
    return sum(rows) / len(rows)


def _padded_mask():
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return mask


def test_relation_kl_matches_a_hand_written_reference_with_padding_and_different_widths():
    torch.manual_seed(0)
    s, t, mask = torch.randn(3, 7, 12), torch.randn(3, 7, 24), _padded_mask()
    for heads in (1, 3, 6):
        got = L.relation_kl(s, t, mask, heads).item()
        assert got == pytest.approx(_reference_relation(s, t, mask, heads), rel=1e-5)
    noisy = t.clone()
    noisy[mask == 0] = 1e3  # what padded positions hold does not matter
    assert L.relation_kl(s, noisy, mask, 3).item() == pytest.approx(L.relation_kl(s, t, mask, 3).item(), rel=1e-6)
    assert L.relation_kl(t, t, mask, 6).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="do not divide"):
        L.relation_kl(s, t, mask, 5)


def test_attention_kl_matches_a_reference_and_honours_the_models_own_mask():
    torch.manual_seed(1)
    s, t, mask = torch.randn(3, 2, 7, 7), torch.randn(3, 2, 7, 7), _padded_mask()
    allowed = torch.ones(1, 1, 7, 7, dtype=torch.bool)
    allowed[..., 0, 1] = False  # query 0 may not see key 1 (a local window)
    rows = []
    for b in range(3):
        n = int(mask[b].sum())
        for h in range(2):
            keep = allowed[0, 0, :n, :n]
            ps = torch.softmax(s[b, h, :n, :n].double().masked_fill(~keep, -math.inf), -1)
            pt = torch.softmax(t[b, h, :n, :n].double().masked_fill(~keep, -math.inf), -1)
            rows += [float((pt[i][keep[i]] * (pt[i][keep[i]].log() - ps[i][keep[i]].log())).sum()) for i in range(n)]
    assert L.attention_kl(s, t, mask, allowed).item() == pytest.approx(sum(rows) / len(rows), rel=1e-5)


@pytest.mark.parametrize("case", list(CONFIGS))
def test_qkv_capture_records_each_familys_projections(case):
    torch.manual_seed(0)
    model = AutoModel.from_config(tiny_config(case)).eval()
    family = FAMILIES[model_type_of(case)]
    ids, mask = padded_batch()
    with torch.no_grad(), capture(model, [0], [], [1, 3]) as rec:
        model(input_ids=ids, attention_mask=mask)
        attention = family.attention_module(family.layer_modules(model.base_model)[0])
        expect = [m(rec.hidden[0]) for m in family.qkv_modules(attention)]
    expect = expect[0].chunk(3, dim=-1) if len(expect) == 1 else expect
    assert sorted(rec.qkv) == [1, 3] and all(x.shape == (2, 10, 32) for x in rec.qkv[3])
    for got, want in zip(rec.qkv[1], expect, strict=True):
        torch.testing.assert_close(got, want)


def _general(tmp_path, teacher_dir, *losses):
    path, _ = corpus_file(tmp_path)
    return load_config(
        None,
        [
            f"teacher={teacher_dir}",
            "student={layers: 2, hidden: 16, heads: 2, ffn: 32}",
            f"general.corpus={path}",
            "general.max_passages=30",
            "general.max_length=16",
            "general.train.batch_size=8",
            "general.train.epochs=2",
            "general.train.learning_rate=1e-3",
            "general.losses={hidden_weight: 0, attention_weight: 0, embedding_weight: 0}",
            *[f"general.losses.{kv}" for kv in losses],
            "report.enabled=false",
        ],
    )


@pytest.mark.slow
def test_relation_distillation_across_widths_and_head_counts_lowers_its_objective(tmp_path, tiny_teacher_dir):
    from tinydistill.stages import general

    # teacher: 4 layers, width 32, 4 heads; student: 2 layers, width 16, 2 heads; no projection anywhere
    cfg = _general(tmp_path, tiny_teacher_dir, "relation_weight=1.0", "relation_heads=4")
    out = general(cfg, tmp_path / "general")
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["objective_before"]) == {"relation", "total"}
    assert m["objective_after"]["relation"] < 0.9 * m["objective_before"]["relation"]


@pytest.mark.parametrize(
    "settings,message",
    [
        (["relation_weight=1", "relation_heads=5"], "relation_heads 5 does not divide the student's width 16"),
        (
            ["relation_weight=1", "relation_heads=4", "relation_teacher_layer=7"],
            "relation_teacher_layer 7 is out of range: the teacher",
        ),
        (["relation_weight=1", "relation_kind=minilmv1"], "compares attention heads one to one"),
        (["relation_weight=1", "relation_kind=v3"], "relation_kind must be one of minilmv2, minilmv1"),
        (["relation_wieght=1"], r"general.losses.relation_wieght: unknown key \(did you mean 'relation_weight'\?\)"),
    ],
)
def test_bad_relation_settings_get_one_line(tmp_path, tiny_teacher_dir, settings, message):
    from tinydistill.stages import general

    with pytest.raises(TinyDistillError, match=message) as err:
        general(_general(tmp_path, tiny_teacher_dir, *settings), tmp_path / "general")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "general").exists()  # refused before anything was written


@pytest.fixture
def toy_term():
    """A term registered from here, as a user's own module would: mean-matching of the first layer's states."""

    def build(cfg, setup):
        scale = getattr(cfg, "toy_scale", 1.0)
        return lambda c: scale * (c.student.hidden[1].mean() - c.teacher.hidden[setup.teacher_layers].mean()) ** 2

    spec = register_term(
        TermSpec(
            "toy",
            build,
            needs=lambda _cfg, setup: CapturePlan(student_hidden=[1], teacher_hidden=[setup.teacher_layers]),
            options={"toy_scale": Option(1.0, "a factor")},
        )
    )
    yield spec
    REGISTRY.pop("toy")


def test_a_term_registered_outside_the_package_configures_captures_and_trains(tmp_path, tiny_teacher_dir, toy_term):
    cfg = LossConfig(toy_weight=0.5, toy_scale=2)
    assert cfg.toy_scale == 2.0 and objectives.live_teacher(cfg) and not objectives.teacher_outputs(cfg)
    assert objectives.unreplayable(cfg) == ["toy"]  # it reads padding: undeclared, the teacher is never replayed
    assert objectives.unreplayable(LossConfig(relation_weight=1.0, hidden_weight=1.0)) == []
    plan = objectives.capture_plan(cfg, Setup([], None, 2, 4))
    assert plan.student_hidden == [1] and plan.teacher_hidden == [4] and not plan.student_attention
    [term] = objectives.build_terms(cfg, Setup([], None, 2, 4), has_teacher=True)
    assert (term.name, term.weight) == ("toy", 0.5)
    with pytest.raises(TinyDistillError, match="toy_weight already belongs to term 'toy'"):
        register_term(TermSpec("toy", toy_term.build))
    with pytest.raises(TinyDistillError, match="hidden_weight already belongs to term 'hidden'"):
        register_term(TermSpec("hidden", toy_term.build))

    from tinydistill.stages import general

    out = general(_general(tmp_path, tiny_teacher_dir, "toy_weight=1.0"), tmp_path / "general")
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["objective_before"]) == {"toy", "total"} and m["history"][0]["toy"] >= 0


def test_without_the_registration_its_key_is_unknown():
    with pytest.raises(ValueError, match="toy_weight: unknown key"):
        LossConfig(toy_weight=1.0)


def test_a_bert_student_learns_relations_from_an_mpnet_teacher_of_another_width():
    """Relations need no projection: an (MPNet, 12 heads... here 4) teacher into a 2-head BERT student of half its
    width gives a finite, differentiable loss whose value is 0 only for identical relations."""
    from tinydistill.terms.minilm import SPEC

    torch.manual_seed(0)
    teacher = AutoModel.from_config(tiny_config("mpnet")).eval()
    student = BertModel(tiny_bert_config(30522, layers=2, hidden=16, heads=2))
    ids, mask = padded_batch()
    cfg = LossConfig(relation_weight=1.0, relation_heads=8)
    setup = objectives.setup_for([], None, student.config, teacher.config)
    plan = objectives.capture_plan(cfg, setup)
    assert (plan.student_qkv, plan.teacher_qkv) == ([2], [3])
    fn = SPEC.build(cfg, setup)
    with capture(student, [], [], plan.student_qkv) as s_rec, capture(teacher, [], [], plan.teacher_qkv) as t_rec:
        with torch.no_grad():
            teacher(input_ids=ids, attention_mask=mask)
        student(input_ids=ids, attention_mask=mask)
        from tinydistill.terms import StepContext

        loss = fn(StepContext(mask, None, None, None, s_rec, t_rec, {}))
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert student.encoder.layer[1].attention.self.query.weight.grad.abs().sum() > 0
