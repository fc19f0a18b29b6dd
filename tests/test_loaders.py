"""Batching: per-epoch seeded order (what exact resume relies on) and length-grouped batches."""

import random

from tinydistill.data.loaders import EncodedDataset, EpochShuffle, make_loader


def test_epoch_order_depends_on_seed_and_epoch_only():
    a, b = EpochShuffle(50, seed=3), EpochShuffle(50, seed=3)
    b.set_epoch(1)
    b.set_epoch(0)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    a.set_epoch(1)
    assert list(a) != list(b) and sorted(a) == list(range(50))
    assert list(EpochShuffle(50, seed=4)) != list(b)


def test_length_grouped_batches_pad_less_and_cover_every_row(tokenizer):
    rng = random.Random(0)
    rows = [{"input_ids": [1] * n, "attention_mask": [1] * n} for n in (rng.randint(3, 60) for _ in range(256))]
    data = EncodedDataset(rows)

    def padded_tokens(loader):
        return sum(b["input_ids"].numel() for b in loader)

    plain = make_loader(data, tokenizer, 16, shuffle=True, seed=1)
    grouped = make_loader(data, tokenizer, 16, shuffle=True, seed=1, group_by_length=True)
    real = sum(len(r["input_ids"]) for r in rows)
    assert padded_tokens(grouped) < 0.8 * padded_tokens(plain)
    assert padded_tokens(grouped) >= real
    order = list(grouped.sampler)
    assert sorted(order) == list(range(256))
    grouped.sampler.set_epoch(1)
    assert list(grouped.sampler) != order


def test_length_grouped_batches_come_in_random_length_order():
    """No long-to-short sweep through an epoch (that curriculum cost 5 points on SST-2): consecutive
    batches go up or down in length about equally often, batches are full, every row appears once."""
    import torch
    from scipy.stats import spearmanr

    from tinydistill.data.loaders import length_grouped_order

    rng = random.Random(1)
    lengths = [rng.randint(3, 60) for _ in range(16 * 200 + 5)]  # 200 full batches and a short one
    order = length_grouped_order(lengths, 16, torch.Generator().manual_seed(0), mega=10)
    assert sorted(order) == list(range(len(lengths)))
    batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    assert [len(b) for b in batches[:-1]] == [16] * 200 and len(batches[-1]) == 5
    means = [sum(lengths[j] for j in b) / len(b) for b in batches[:-1]]
    assert all(max(lengths[j] for j in b) - min(lengths[j] for j in b) <= 12 for b in batches[:-1])  # grouped
    ups = sum(b > a for a, b in zip(means, means[1:]))
    assert 0.35 < ups / (len(means) - 1) < 0.65
    assert abs(spearmanr(range(len(means)), means)[0]) < 0.2
