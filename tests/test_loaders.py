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
