"""Distillation losses: small pure functions, tensors in, scalar out. They know nothing about models.

Shapes: B batch, L sequence length, C classes, D hidden width, H heads.
``attention_mask`` is the tokenizer's (B, L) mask: 1 for real tokens, 0 for padding.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Mode = Literal["masked", "tinybert"]

#: TinyBERT's additive mask value and the threshold below which its attention MSE zeroes scores
#: (general_distill.py / task_distill.py: ``torch.where(att <= -1e2, zeros, att)``).
TINYBERT_MASK_VALUE = -10000.0
TINYBERT_SCORE_FLOOR = -100.0


def soft_cross_entropy(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0, t2_scaling: bool = True
) -> Tensor:
    """Cross-entropy of the student's tempered distribution against the teacher's.

    student_logits, teacher_logits: (B, C) -> scalar. Summed over classes, averaged over the batch
    (unlike TinyBERT's ``.mean()``, which also divides by C), times T^2 when ``t2_scaling``.
    Its gradient equals the KL divergence's; the value differs by the teacher's entropy.
    """
    t = temperature
    target = F.softmax(teacher_logits.float() / t, dim=-1)
    loss = -(target * F.log_softmax(student_logits.float() / t, dim=-1)).sum(-1).mean()
    return loss * t * t if t2_scaling else loss


def kl_divergence(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0, t2_scaling: bool = True
) -> Tensor:
    """KL(teacher || student) at temperature T with ``batchmean`` reduction.

    student_logits, teacher_logits: (B, C) -> scalar (0 when the distributions match).
    """
    t = temperature
    loss = F.kl_div(
        F.log_softmax(student_logits.float() / t, dim=-1),
        F.log_softmax(teacher_logits.float() / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    return loss * t * t if t2_scaling else loss


def hard_cross_entropy(student_logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy to gold labels. student_logits (B, C), labels (B,) int -> scalar."""
    return F.cross_entropy(student_logits.float(), labels)


def regression_mse(student_pred: Tensor, target: Tensor) -> Tensor:
    """MSE for regression heads (STS-B). student_pred (B, 1) or (B,), target same numel -> scalar."""
    return F.mse_loss(student_pred.float().view(-1), target.float().view(-1))


def hidden_mse(student_hidden: Tensor, teacher_hidden: Tensor, attention_mask: Tensor, mode: Mode = "masked") -> Tensor:
    """MSE between (already projected) student hidden states and the teacher's.

    student_hidden, teacher_hidden: (B, L, D); attention_mask: (B, L) -> scalar.
    masked: mean over real tokens and D only. tinybert: mean over every position, padding included
    (the reference's arithmetic; its value depends on how much padding the batch has).
    """
    s, t = student_hidden.float(), teacher_hidden.float()
    if mode == "tinybert":
        return F.mse_loss(s, t)
    w = attention_mask.to(s.dtype).unsqueeze(-1)  # (B, L, 1)
    return (((s - t) ** 2) * w).sum() / (w.sum() * s.shape[-1]).clamp_min(1.0)


def attention_mse(
    student_scores: Tensor,
    teacher_scores: Tensor,
    attention_mask: Tensor,
    mode: Mode = "masked",
    allowed: Tensor | None = None,
) -> Tensor:
    """MSE between pre-softmax attention scores (QK^T / sqrt(d_head), no mask added).

    student_scores, teacher_scores: (B, H, L, L) [query, key]; attention_mask: (B, L) -> scalar.
    allowed: optional bool, broadcastable to (B, H, L, L): False where a model's own attention mask hides the
    key from the query (a local layer's window); those entries are left out like padded keys.
    masked: mean over (head, real query, real key) triples only.
    tinybert: add TinyBERT's additive mask (-10000 on padded keys), set every entry <= -100 to 0 in
    both tensors, then a plain mean over everything (padded query rows included), as the reference does.
    """
    s, t = student_scores.float(), teacher_scores.float()
    if s.shape != t.shape:
        raise ValueError(f"attention shapes differ: student {tuple(s.shape)}, teacher {tuple(t.shape)}")
    if mode == "tinybert":
        additive = (1.0 - attention_mask.to(s.dtype))[:, None, None, :] * TINYBERT_MASK_VALUE
        if allowed is not None:
            additive = additive + (~allowed).to(s.dtype) * TINYBERT_MASK_VALUE
        s, t = s + additive, t + additive
        s = torch.where(s <= TINYBERT_SCORE_FLOOR, torch.zeros_like(s), s)
        t = torch.where(t <= TINYBERT_SCORE_FLOOR, torch.zeros_like(t), t)
        return F.mse_loss(s, t)
    m = attention_mask.to(s.dtype)
    w = (m[:, :, None] * m[:, None, :]).unsqueeze(1).expand_as(s)  # (B, H, Lq, Lk)
    if allowed is not None:
        w = w * allowed.to(s.dtype)
    return (((s - t) ** 2) * w).sum() / w.sum().clamp_min(1.0)
