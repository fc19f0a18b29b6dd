"""Distillation losses: small pure functions, tensors in, scalar out. They know nothing about models.

Shapes: B batch, L sequence length, C classes, D hidden width, H heads.
``attention_mask`` is the tokenizer's (B, L) mask: 1 for real tokens, 0 for padding.
"""

from __future__ import annotations

import math
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


def soft_binary_cross_entropy(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0, t2_scaling: bool = True
) -> Tensor:
    """Per-label binary cross-entropy of the student's tempered sigmoids against the teacher's (multi-label).

    student_logits, teacher_logits: (B, C) -> scalar, averaged over the batch and the labels. Each label is the
    two-class softmax of (z, 0), so sigmoid(z / T) is that softmax at temperature T and the T^2 factor (when
    ``t2_scaling``) keeps the gradient's scale across temperatures as it does for :func:`soft_cross_entropy`: the
    value equals that function on the (B * C, 2) logits [z, 0].
    """
    t = temperature
    target = torch.sigmoid(teacher_logits.float() / t)
    loss = F.binary_cross_entropy_with_logits(student_logits.float() / t, target)
    return loss * t * t if t2_scaling else loss


def hard_binary_cross_entropy(student_logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy to gold multi-hot labels: student_logits (B, C), labels (B, C) of 0/1 -> scalar, the mean
    over the batch and the labels (as transformers' multi-label head computes it); 0 (with a gradient) when B is 0, e.g.
    a batch of unlabelled transfer-set rows only."""
    if not len(labels):
        return student_logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(student_logits.float(), labels.float())


def select_tokens(keep: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """The rows of per-token tensors where ``keep`` is true, flattened: keep (B, L) bool, each tensor (B, L, ...)
    -> (N, ...), N = keep.sum(). A per-token loss is then a per-row loss averaged over the kept tokens."""
    return tuple(t[keep] for t in tensors)


def over_positions(keep: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Per-token outputs read as distributions over positions (a QA window's start and end): keep (B, L) bool, each
    tensor (B, L, K) -> (B * K, L) float, row b * K + k the k-th output of window b, positions not kept set to -1e4
    so that a softmax gives them no mass and a loss of rows over positions skips them."""
    return tuple(t.float().masked_fill(~keep[..., None], -1e4).transpose(1, 2).reshape(-1, t.shape[1]) for t in tensors)


def hard_cross_entropy(student_logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy to gold labels. student_logits (B, C), labels (B,) int -> scalar; 0 (with a gradient) when B is 0,
    e.g. a batch of unlabelled transfer-set rows only."""
    if not len(labels):
        return student_logits.sum() * 0.0
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


# --- teacher and student with different tokenizers (see tinydistill.data.alignment) ---------------------------


def gather_positions(teacher: Tensor, positions: Tensor) -> Tensor:
    """The teacher's vectors at each student position.

    teacher: (B, Lt, D); positions: (B, Ls) teacher index per student position, -1 for none -> (B, Ls, D), zeros
    where -1.
    """
    idx = positions.clamp_min(0)[..., None].expand(-1, -1, teacher.shape[-1])
    return torch.gather(teacher, 1, idx) * (positions >= 0)[..., None].to(teacher.dtype)


def gather_scores(scores: Tensor, positions: Tensor) -> Tensor:
    """The teacher's attention scores (or mask) between the student's positions.

    scores: (B, H, Lt, Lt), any dim of size 1 broadcast; positions: (B, Ls) -> (B, H, Ls, Ls) (-1 reads index 0:
    mask those entries out).
    """
    b, ls = positions.shape
    scores = scores.expand(b, scores.shape[1], -1, -1) if scores.shape[0] == 1 else scores
    h, lq, lk = scores.shape[1], scores.shape[2], scores.shape[3]
    idx = positions.clamp_min(0)
    if lq > 1:
        scores = torch.gather(scores, 2, idx[:, None, :, None].expand(b, h, ls, lk))
    if lk > 1:
        scores = torch.gather(scores, 3, idx[:, None, None, :].expand(b, h, scores.shape[2], ls))
    return scores


def pool_words(hidden: Tensor, words: Tensor, n_words: int) -> tuple[Tensor, Tensor]:
    """Mean of each word's pieces.

    hidden: (B, L, D); words: (B, L) word index per token, -1 for none -> (B, W, D) means, (B, W) piece counts.
    """
    b, _, d = hidden.shape
    valid = (words >= 0).to(hidden.dtype)
    idx = words.clamp_min(0)
    sums = hidden.new_zeros(b, n_words, d).scatter_add(1, idx[..., None].expand(-1, -1, d), hidden * valid[..., None])
    counts = hidden.new_zeros(b, n_words).scatter_add(1, idx, valid)
    return sums / counts.clamp_min(1)[..., None], counts


# --- MiniLM: self-attention distributions and relations (KL, not MSE) ----------------------------------------------


def attention_kl(
    student_logits: Tensor, teacher_logits: Tensor, attention_mask: Tensor, allowed: Tensor | None = None
) -> Tensor:
    """KL(teacher || student) between the softmax over keys of two sets of attention logits.

    student_logits, teacher_logits: (B, H, L, L) [query, key], pre-softmax, no mask added; attention_mask: (B, L);
    allowed: optional bool broadcastable to (B, H, L, L) (False: a model's own mask hides the key). Padded and hidden
    keys get no probability; the KL is summed over keys and averaged over (head, real query) -> scalar.
    """
    s, t = student_logits.float(), teacher_logits.float()
    if s.shape != t.shape:
        raise ValueError(f"attention shapes differ: student {tuple(s.shape)}, teacher {tuple(t.shape)}")
    keep = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, Lk)
    if allowed is not None:
        keep = keep & allowed
    log_s = F.log_softmax(s.masked_fill(~keep, -1e9), dim=-1)
    log_t = F.log_softmax(t.masked_fill(~keep, -1e9), dim=-1)
    kl = torch.where(keep, log_t.exp() * (log_t - log_s), torch.zeros_like(s)).sum(-1)  # (B, H, Lq)
    rows = attention_mask.to(s.dtype)[:, None, :].expand_as(kl)
    return (kl * rows).sum() / rows.sum().clamp_min(1.0)


def relation_logits(x: Tensor, heads: int) -> Tensor:
    """Scaled dot products of the vectors with themselves, per relation head: x (B, L, D) -> (B, R, L, L), R = heads,
    each head a D/R slice: x_r x_rᵀ / √(D/R)."""
    b, length, d = x.shape
    if d % heads:
        raise ValueError(f"{heads} relation heads do not divide the width {d}")
    xr = x.float().view(b, length, heads, d // heads).transpose(1, 2)
    return xr @ xr.transpose(-1, -2) / math.sqrt(d // heads)


def relation_kl(student: Tensor, teacher: Tensor, attention_mask: Tensor, heads: int) -> Tensor:
    """MiniLMv2's self-attention relation loss for one of Q, K or V: KL(teacher || student) between
    softmax(relation_logits) rows. student (B, L, Ds), teacher (B, L, Dt), any widths ``heads`` divides;
    attention_mask (B, L) -> scalar (padded keys and queries left out)."""
    return attention_kl(relation_logits(student, heads), relation_logits(teacher, heads), attention_mask)
