"""Tokenise examples once, then batch them with dynamic padding (each batch padded to its longest row)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from tinydistill.data.alignment import encode_pair
from tinydistill.data.keys import ALIGN_KEYS, CACHED_LOGITS, LABELS, MODEL_INPUTS, TEACHER_PREFIX, is_teacher_input
from tinydistill.data.readers import Examples, subset
from tinydistill.errors import TinyDistillError


class EncodedDataset(Dataset):
    """Pre-tokenised rows: dicts of input_ids / attention_mask / (token_type_ids) / (labels), unpadded; with a
    teacher of another tokenizer also its ``teacher_*`` inputs and the alignment (``alignment`` says which kind,
    see :mod:`tinydistill.data.alignment`). ``examples`` keeps the texts, for models that tokenise them their way."""

    def __init__(self, rows: list[dict], alignment: str | None = None, examples: Examples | None = None) -> None:
        self.rows = rows
        self.alignment = alignment
        self.examples = examples

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]

    def head(self, n: int) -> EncodedDataset:
        """The first ``n`` rows (and their texts, where each row is one example; not a QA question's windows)."""
        keep = list(range(min(n, len(self.rows))))
        rows = [self.rows[i] for i in keep]  # a list, also from an Arrow table (a corpus read lazily)
        one_each = self.examples is not None and len(self.examples) == len(self.rows)
        return EncodedDataset(rows, self.alignment, subset(self.examples, keep) if one_each else None)

    def lengths(self) -> list[int]:
        """Each row's token count (from the table's ``length`` column where a lazily read corpus has one)."""
        if "length" in getattr(self.rows, "column_names", ()):  # one read of the column, as a list (indexing
            return self.rows.select_columns(["length"]).to_dict()["length"]  # the table per row costs ~0.3 ms)
        return [len(r["input_ids"]) for r in self.rows]


def encode_examples(
    ex: Examples,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    teacher_tokenizer: PreTrainedTokenizerBase | None = None,
) -> EncodedDataset:
    """Tokenise (and truncate) every example; labels ride along as ``labels``. With ``teacher_tokenizer`` (a
    teacher of another vocabulary) the rows also hold the teacher's tokenization and the alignment. An example
    that a tokenizer turns into special tokens alone is refused (it would train on nothing)."""
    alignment = None
    if teacher_tokenizer is None:
        enc = tokenizer(ex.texts, ex.pairs, truncation=True, max_length=max_length)
        rows = [{k: enc[k][i] for k in enc} for i in range(len(ex))]
    else:
        rows, alignment = encode_pair(ex.texts, ex.pairs, tokenizer, teacher_tokenizer, max_length)
    data = EncodedDataset(rows, alignment, ex)
    check_not_empty(data, tokenizer, "")
    if teacher_tokenizer is not None:
        check_not_empty(data, teacher_tokenizer, TEACHER_PREFIX)
    if ex.labels is not None:
        for row, label in zip(rows, ex.labels):
            row[LABELS] = label
    if ex.soft is not None:  # another teacher's outputs: batched like cached teacher logits
        for row, logits in zip(rows, ex.soft):
            row[CACHED_LOGITS] = logits
    return data


def check_not_empty(data: EncodedDataset, tokenizer: PreTrainedTokenizerBase, prefix: str) -> None:
    """Refuse rows that ``tokenizer`` turned into special tokens alone (``prefix``: whose inputs, '' or 'teacher_')."""
    nothing = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}  # unknown words are still text
    empty = [i for i, r in enumerate(data.rows) if all(t in nothing for t in r[prefix + "input_ids"])]
    if empty:
        ex = data.examples
        raise TinyDistillError(
            f"{ex.source}: {len(empty)} example(s) tokenise to special tokens only (the first: "
            f"example {empty[0] + 1}, {ex.texts[empty[0]][:40]!r}); remove them or fix their text"
        )


#: the inputs a model reads (everything else in a row rides along: labels, cached teacher outputs, alignment, ...)


def split_inputs(batch: dict) -> tuple[dict, dict, dict]:
    """The student's inputs, the teacher's (its own tokenization where the batch has one) and the alignment."""
    n = len(TEACHER_PREFIX)
    theirs = {k[n:]: v for k, v in batch.items() if is_teacher_input(k)}
    alignment = {k: batch[k] for k in ALIGN_KEYS if k in batch}
    own = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
    return own, theirs or own, alignment


def inputs_only(data: EncodedDataset) -> EncodedDataset:
    """The rows' model inputs alone (for timing, or a model that needs no labels)."""
    return EncodedDataset([{k: r[k] for k in MODEL_INPUTS if k in r} for r in data.rows], None, data.examples)


def by_length(data: EncodedDataset) -> EncodedDataset:
    """The same rows, shortest first: evaluation batches then pad little (labels ride along with their rows)."""
    return EncodedDataset(sorted(data.rows, key=lambda r: len(r["input_ids"])), data.alignment, data.examples)


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


class PadBoth:
    """Dynamic padding of the student's inputs, and of the teacher's (``teacher_*``, with the teacher's tokenizer)
    and the alignment (-1) where the rows have them."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, teacher_tokenizer: PreTrainedTokenizerBase | None) -> None:
        self.student = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        self.teacher = DataCollatorWithPadding(teacher_tokenizer, return_tensors="pt") if teacher_tokenizer else None

    def __call__(self, rows: list[dict]) -> dict:
        theirs = {k for k in rows[0] if is_teacher_input(k)} | {CACHED_LOGITS, *ALIGN_KEYS}
        batch = dict(self.student([{k: v for k, v in r.items() if k not in theirs} for r in rows]))
        if CACHED_LOGITS in rows[0]:  # lists, arrays or memory-mapped rows
            batch[CACHED_LOGITS] = torch.as_tensor(np.stack([np.asarray(r[CACHED_LOGITS]) for r in rows])).float()
        theirs = {k for k in rows[0] if is_teacher_input(k)}
        if theirs and self.teacher is not None:
            n = len(TEACHER_PREFIX)
            padded = self.teacher([{k[n:]: r[k] for k in theirs} for r in rows])
            batch |= {TEACHER_PREFIX + k: v for k, v in padded.items()}
        for key in ALIGN_KEYS:
            if key in rows[0]:
                width = batch["teacher_input_ids" if key == "teacher_words" else "input_ids"].shape[1]
                batch[key] = torch.tensor([r[key] + [-1] * (width - len(r[key])) for r in rows])
        return batch


def make_loader(
    data: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    group_by_length: bool = False,
    teacher_tokenizer: PreTrainedTokenizerBase | None = None,
    collate=None,
) -> DataLoader:
    """A DataLoader with dynamic padding; shuffling is seeded per epoch so runs (and resumes) repeat,
    and ``group_by_length`` batches rows of similar length together (less padding, same rows).
    ``teacher_tokenizer`` pads the teacher's own inputs, for rows that carry them; ``collate`` replaces the
    default :class:`PadBoth` (a task's collator, e.g. one that pads per-token labels).

    Its private generator keeps iterator creation from drawing on the global RNG, whose stream (dropout)
    must be the same in a resumed run as in an uninterrupted one.
    """
    collate = collate or PadBoth(tokenizer, teacher_tokenizer)
    lengths = None
    if shuffle and group_by_length:
        lengths = data.lengths() if isinstance(data, EncodedDataset) else [len(r["input_ids"]) for r in data]
    sampler = EpochShuffle(len(data), seed, lengths, batch_size) if shuffle else None
    return DataLoader(
        data, batch_size=batch_size, sampler=sampler, collate_fn=collate, generator=torch.Generator().manual_seed(seed)
    )


def teacher_view(data: EncodedDataset) -> EncodedDataset:
    """The teacher's side of encoded rows (its own ``teacher_*`` inputs renamed), or the rows as they are."""
    if not data.rows or TEACHER_PREFIX + "input_ids" not in data.rows[0]:
        return data
    n = len(TEACHER_PREFIX)
    rows = [{k[n:]: v for k, v in r.items() if is_teacher_input(k)} for r in data.rows]
    return EncodedDataset(rows)
