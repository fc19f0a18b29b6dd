"""Tokenise examples once, then batch them with dynamic padding (each batch padded to its longest row)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from tinydistill.data.readers import Examples
from tinydistill.errors import TinyDistillError


class EncodedDataset(Dataset):
    """Pre-tokenised rows: dicts of input_ids / attention_mask / (token_type_ids) / (labels), unpadded."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def encode_examples(ex: Examples, tokenizer: PreTrainedTokenizerBase, max_length: int) -> EncodedDataset:
    """Tokenise (and truncate) every example; labels ride along as ``labels``. An example that the tokenizer
    turns into special tokens alone is refused (it would train on nothing)."""
    enc = tokenizer(ex.texts, ex.pairs, truncation=True, max_length=max_length)
    special = set(tokenizer.all_special_ids)
    empty = [i for i, ids in enumerate(enc["input_ids"]) if all(t in special for t in ids)]
    if empty:
        raise TinyDistillError(
            f"{ex.source}: {len(empty)} example(s) tokenise to special tokens only (the first: "
            f"example {empty[0] + 1}, {ex.texts[empty[0]][:40]!r}); remove them or fix their text"
        )
    keys = list(enc.keys())
    rows = [{k: enc[k][i] for k in keys} for i in range(len(ex))]
    if ex.labels is not None:
        for row, label in zip(rows, ex.labels):
            row["labels"] = label
    return EncodedDataset(rows)


def by_length(data: EncodedDataset) -> EncodedDataset:
    """The same rows, shortest first: evaluation batches then pad little (labels ride along with their rows)."""
    return EncodedDataset(sorted(data.rows, key=lambda r: len(r["input_ids"])))


def encode_passages(passages: list[str], tokenizer: PreTrainedTokenizerBase, max_length: int) -> EncodedDataset:
    """Unlabelled passages cut into windows of at most ``max_length`` tokens (no text is thrown away)."""
    enc = tokenizer(passages, truncation=True, max_length=max_length, return_overflowing_tokens=True)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return EncodedDataset([{k: enc[k][i] for k in keys} for i in range(len(enc["input_ids"]))])


def length_grouped_order(lengths: list[int], batch_size: int, generator: torch.Generator, mega: int = 50) -> list[int]:
    """A shuffled order in which every batch holds rows of similar length, and batches come in random order.

    Rows are shuffled, cut into mega-batches of ``mega`` batches, each sorted by length and cut into
    batches; then the batches are shuffled. (transformers' ``get_length_grouped_indices`` keeps each
    mega-batch in length order, so an epoch walks from long to short rows over and over: on SST-2 that
    cost 5 points of student accuracy here.) Every batch is full except possibly the last one.
    """
    perm = torch.randperm(len(lengths), generator=generator).tolist()
    chunk = mega * batch_size
    batches = []
    for i in range(0, len(perm), chunk):
        part = sorted(perm[i : i + chunk], key=lambda j: lengths[j])
        batches += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    tail = [batches.pop()] if batches and len(batches[-1]) < batch_size else []  # the one short batch stays last
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [j for b in order for j in batches[b]] + [j for b in tail for j in b]


class EpochShuffle(Sampler[int]):
    """A permutation that depends on (seed, epoch) alone, so a resumed run sees exactly the data order
    of an uninterrupted one (call ``set_epoch`` before each epoch; Accelerate forwards it).

    With ``lengths`` and ``batch_size``, rows of similar length share batches (:func:`length_grouped_order`),
    so dynamic padding pads less; every row is still seen once per epoch.
    """

    def __init__(self, size: int, seed: int, lengths: list[int] | None = None, batch_size: int | None = None) -> None:
        self.size, self.seed, self.epoch = size, seed, 0
        self.lengths, self.batch_size = lengths, batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.lengths is not None:
            return iter(length_grouped_order(self.lengths, self.batch_size, g))
        return iter(torch.randperm(self.size, generator=g).tolist())


def make_loader(
    data: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    group_by_length: bool = False,
) -> DataLoader:
    """A DataLoader with dynamic padding; shuffling is seeded per epoch so runs (and resumes) repeat,
    and ``group_by_length`` batches rows of similar length together (less padding, same rows).

    Its private generator keeps iterator creation from drawing on the global RNG, whose stream (dropout)
    must be the same in a resumed run as in an uninterrupted one.
    """
    collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")
    lengths = [len(data[i]["input_ids"]) for i in range(len(data))] if (shuffle and group_by_length) else None
    sampler = EpochShuffle(len(data), seed, lengths, batch_size) if shuffle else None
    return DataLoader(
        data, batch_size=batch_size, sampler=sampler, collate_fn=collate, generator=torch.Generator().manual_seed(seed)
    )
