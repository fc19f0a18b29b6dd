"""Captured scores are the model's own pre-softmax attention logits; hidden states its own outputs."""

import torch
from transformers import BertModel

from tests.conftest import tiny_bert_config
from tinydistill.capture import capture
from tinydistill.models import freeze


def _model(attn="eager", seed=0):
    torch.manual_seed(seed)
    cfg = tiny_bert_config(100, layers=3, hidden=24, heads=3)
    cfg._attn_implementation = attn
    return BertModel(cfg).eval()


def _batch():
    ids = torch.tensor([[2, 5, 9, 11, 3, 0, 0], [2, 7, 8, 9, 10, 12, 3]])
    mask = (ids != 0).long()
    return ids, mask


def test_scores_are_the_pre_softmax_logits_the_model_used():
    model = _model("eager")
    ids, mask = _batch()
    with capture(model, [0, 1, 2, 3], [1, 2, 3]) as rec:
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True)
    additive = (1 - mask)[:, None, None, :].float() * torch.finfo(torch.float32).min
    for layer in (1, 2, 3):
        scores = rec.score(layer)
        assert scores.shape == (2, 3, 7, 7)
        # softmax of our scores plus the model's additive mask = the model's own attention probabilities
        torch.testing.assert_close(
            torch.softmax(scores + additive, -1), out.attentions[layer - 1], atol=1e-6, rtol=1e-5
        )
        # and a manual Q K^T / sqrt(d) from the layer's input hidden state
        attn = model.encoder.layer[layer - 1].attention.self
        x = out.hidden_states[layer - 1]
        q = attn.query(x).view(2, 7, 3, 8).transpose(1, 2)
        k = attn.key(x).view(2, 7, 3, 8).transpose(1, 2)
        torch.testing.assert_close(scores, q @ k.transpose(-1, -2) / 8**0.5)
    for layer in range(4):
        torch.testing.assert_close(rec.hidden[layer], out.hidden_states[layer])


def test_scores_are_the_same_under_sdpa_and_eager():
    ids, mask = _batch()
    eager, sdpa = _model("eager"), _model("sdpa")
    with capture(eager, [], [2]) as r1, capture(sdpa, [], [2]) as r2:
        eager(input_ids=ids, attention_mask=mask)
        sdpa(input_ids=ids, attention_mask=mask)
        torch.testing.assert_close(r1.score(2), r2.score(2))


def test_only_mapped_layers_are_hooked_and_hooks_are_removed():
    model = _model()
    ids, mask = _batch()
    before = model.config._attn_implementation
    with capture(model, [0, 2], [3]) as rec:
        model(input_ids=ids, attention_mask=mask)
        assert sorted(rec.hidden) == [0, 2]
        assert sorted(rec.scores) == [3]
    hooked = [m for m in model.modules() if m._forward_hooks or m._forward_pre_hooks]
    assert hooked == [] and model.config._attn_implementation == before
    from tinydistill.capture import _SINKS

    assert _SINKS == {}


def test_student_scores_carry_gradients():
    model = _model().train()
    ids, mask = _batch()
    with capture(model, [1], [1]) as rec:
        model(input_ids=ids, attention_mask=mask)
        (rec.score(1).sum() + rec.hidden[1].sum()).backward()
    assert model.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_frozen_teacher_stays_in_eval_mode_without_gradients():
    teacher = freeze(_model().train())
    teacher.train()
    assert not teacher.training and not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
