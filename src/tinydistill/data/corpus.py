"""General-distillation corpora larger than memory: read as a memory-mapped Arrow table by `datasets` (one passage per
non-empty line), a seeded random ``max_passages`` chosen through an index (nothing loaded), and tokenised into
windows in one cached, batched pass with a progress bar. Rows are read from disk as training asks for them."""

from __future__ import annotations

from pathlib import Path

from tinydistill.data.keys import MODEL_INPUTS
from tinydistill.data.loaders import EncodedDataset
from tinydistill.data.readers import corpus_files
from tinydistill.errors import TinyDistillError


def _windows(batch: dict, tokenizer, max_length: int) -> dict:
    enc = tokenizer(batch["text"], truncation=True, max_length=max_length, return_overflowing_tokens=True)
    out = {k: enc[k] for k in MODEL_INPUTS if k in enc}
    out["length"] = [len(ids) for ids in enc["input_ids"]]
    return out


def _features(tokenizer):
    """Compact column types: int32 token ids, int8 masks and segment ids (datasets would store int64)."""
    from datasets import Features, Sequence, Value

    ids = "int32" if len(tokenizer) < 2**31 else "int64"
    types = {"input_ids": ids, "attention_mask": "int8", "token_type_ids": "int8", "length": "int32"}
    names = [k for k in (*MODEL_INPUTS, "length") if k == "length" or k in tokenizer.model_input_names]
    return Features({k: Value(types[k]) if k == "length" else Sequence(Value(types[k])) for k in names})


def encode_corpus(
    path: str | Path, tokenizer, max_length: int, max_passages: int | None, seed: int, cache_dir: Path
) -> tuple[EncodedDataset, int]:
    """(windows of at most ``max_length`` tokens, number of passages used). With ``max_passages``, a seeded random
    choice of that many passages; without, every passage in file order."""
    import datasets

    files = corpus_files(path)
    try:
        ds = datasets.load_dataset(
            "text", data_files=[str(f) for f in files], split="train", cache_dir=str(cache_dir / "datasets")
        )
    except UnicodeDecodeError as exc:
        raise TinyDistillError(f"corpus {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except Exception as exc:  # datasets wraps reader errors in its own types
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, UnicodeDecodeError):
            raise TinyDistillError(f"corpus {path} is not UTF-8 text (byte {cause.start}: {cause.reason})") from None
        raise TinyDistillError(f"could not read corpus {path}: {str(exc).splitlines()[0]}") from None
    ds = ds.filter(lambda b: [bool(t.strip()) for t in b["text"]], batched=True, desc="corpus: non-empty lines")
    if not len(ds):
        raise TinyDistillError(f"corpus {path} holds no text")
    if max_passages and max_passages < len(ds):
        ds = ds.shuffle(seed=seed).select(range(max_passages))  # an index over the table: nothing is loaded
    windows = ds.map(
        _windows,
        batched=True,
        remove_columns=ds.column_names,
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
        features=_features(tokenizer),
        desc="corpus: tokenising",
    )
    return EncodedDataset(windows), len(ds)
