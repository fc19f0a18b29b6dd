"""Each loss against values computed by hand, in both modes, with masking and T^2."""

import math

import pytest
import torch
import torch.nn.functional as F

from tinydistill import losses as L


def _softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_soft_cross_entropy_matches_hand_computation_with_t2():
    s = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]])
    t = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    T = 2.0
    expected = 0.0
    for srow, trow in zip(s.tolist(), t.tolist()):
        p = _softmax([x / T for x in trow])
        q = _softmax([x / T for x in srow])
        expected += -sum(pi * math.log(qi) for pi, qi in zip(p, q))
    expected = expected / 2 * T * T  # batchmean (2 rows), times T^2
    assert L.soft_cross_entropy(s, t, T).item() == pytest.approx(expected, rel=1e-6)
    assert L.soft_cross_entropy(s, t, T, t2_scaling=False).item() == pytest.approx(expected / 4, rel=1e-6)


def test_soft_cross_entropy_is_not_divided_by_num_classes():
    # TinyBERT's task_distill.py soft_cross_entropy, (-p * log q).mean(), would be 1/C of this (its issue #176).
    s, t = torch.zeros(1, 4), torch.zeros(1, 4)
    assert L.soft_cross_entropy(s, t, 1.0).item() == pytest.approx(math.log(4), rel=1e-6)


def test_kl_is_batchmean_and_differs_from_ce_by_teacher_entropy():
    s = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]])
    t = torch.tensor([[2.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    T = 3.0
    p = F.softmax(t / T, -1)
    entropy = -(p * p.log()).sum(-1).mean() * T * T
    kl = L.kl_divergence(s, t, T)
    assert kl.item() == pytest.approx(L.soft_cross_entropy(s, t, T).item() - entropy.item(), rel=1e-5)
    manual = sum((pi * (pi / qi).log()).sum() for pi, qi in zip(p, F.softmax(s / T, -1))) / 3 * T * T
    assert kl.item() == pytest.approx(manual.item(), rel=1e-5)
    assert L.kl_divergence(t, t, T).item() == pytest.approx(0.0, abs=1e-7)


def test_hard_cross_entropy_and_regression_mse():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p(1) = 3/4
    assert L.hard_cross_entropy(logits, torch.tensor([1])).item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert L.regression_mse(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 5.0])).item() == pytest.approx(2.5)


def _hidden_case():
    s = torch.zeros(1, 3, 2)
    t = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [100.0, 100.0]]])  # last position is padding
    mask = torch.tensor([[1, 1, 0]])
    return s, t, mask


def test_hidden_mse_masked_excludes_padding():
    s, t, mask = _hidden_case()
    # real positions: squared errors 1+1+4+0 = 6 over 2 tokens x 2 dims
    assert L.hidden_mse(s, t, mask, "masked").item() == pytest.approx(6 / 4)


def test_hidden_mse_tinybert_includes_padding_like_the_reference():
    s, t, mask = _hidden_case()
    assert L.hidden_mse(s, t, mask, "tinybert").item() == pytest.approx((6 + 2 * 100**2) / 6)
    assert L.hidden_mse(s, t, mask, "tinybert").item() == pytest.approx(F.mse_loss(s, t).item())


def _tinybert_reference_attention_loss(student_att, teacher_att):
    """The reference code (TinyBERT task_distill.py), fed the scores its model returns: raw + additive mask."""
    student_att = torch.where(student_att <= -1e2, torch.zeros_like(student_att), student_att)
    teacher_att = torch.where(teacher_att <= -1e2, torch.zeros_like(teacher_att), teacher_att)
    return F.mse_loss(student_att, teacher_att)


def test_attention_mse_tinybert_mode_reproduces_the_reference():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 5, 5) * 4, torch.randn(2, 3, 5, 5) * 4
    t[0, 0, 0, 0] = -150.0  # a real score below the floor is zeroed by the reference too
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    additive = (1 - mask)[:, None, None, :].float() * -10000.0
    expected = _tinybert_reference_attention_loss(s + additive, t + additive)
    assert L.attention_mse(s, t, mask, "tinybert").item() == pytest.approx(expected.item(), rel=1e-6)


def test_attention_mse_masked_hand_computed():
    s = torch.zeros(1, 2, 2, 2)  # (B, H, Lq, Lk); position 1 is padding
    t = torch.tensor([[[[1.0, 50.0], [50.0, 50.0]], [[3.0, 50.0], [50.0, 50.0]]]])
    mask = torch.tensor([[1, 0]])
    # only (q=0, k=0) counts, in each of 2 heads: (1 + 9) / 2
    assert L.attention_mse(s, t, mask, "masked").item() == pytest.approx(5.0)
    # tinybert mode: padded key column zeroed, padded query row kept: (1 + 9 + 0 + 0 + 2 * 50^2) / 8
    assert L.attention_mse(s, t, mask, "tinybert").item() == pytest.approx((10 + 2 * 2500) / 8)


def test_masked_losses_do_not_depend_on_padding_amount():
    torch.manual_seed(1)
    s, t = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    sa, ta = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)
    mask = torch.ones(1, 4, dtype=torch.long)
    mask_p = torch.tensor([[1, 1, 1, 1, 0, 0]])  # the same rows with two padded positions (junk values)
    s_p, t_p = F.pad(s, (0, 0, 0, 2), value=7.0), F.pad(t, (0, 0, 0, 2), value=-5.0)
    sa_p, ta_p = F.pad(sa, (0, 2, 0, 2), value=7.0), F.pad(ta, (0, 2, 0, 2), value=-5.0)
    assert L.hidden_mse(s_p, t_p, mask_p, "masked").item() == pytest.approx(L.hidden_mse(s, t, mask).item(), rel=1e-6)
    assert L.attention_mse(sa_p, ta_p, mask_p, "masked").item() == pytest.approx(
        L.attention_mse(sa, ta, mask).item(), rel=1e-6
    )
    # the reference arithmetic does depend on padding (TinyBERT averages over padded positions too)
    assert L.hidden_mse(s_p, t_p, mask_p, "tinybert").item() != pytest.approx(
        L.hidden_mse(s, t, mask, "tinybert").item()
    )


def test_attention_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="attention shapes differ"):
        L.attention_mse(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 3, 3), torch.ones(1, 3))
