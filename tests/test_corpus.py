"""General-distillation corpora read lazily: memory-mapped by `datasets`, a seeded random max_passages, the same
windows as the in-memory path, and general distillation on such a corpus."""

from __future__ import annotations

import json

import pytest

from tests.helpers import corpus_file
from tinydistill.data.corpus import encode_corpus
from tinydistill.data.loaders import encode_passages
from tinydistill.errors import TinyDistillError


def test_lazy_windows_equal_the_in_memory_ones(tmp_path, tokenizer):
    path, lines = corpus_file(tmp_path)
    lazy, passages = encode_corpus(path, tokenizer, 16, None, 0, tmp_path / "cache")
    eager = encode_passages(lines, tokenizer, 16)
    assert passages == 40 and len(lazy) == len(eager) > 40  # long passages are cut into several windows
    assert [lazy[i]["input_ids"] for i in range(len(lazy))] == [r["input_ids"] for r in eager.rows]
    assert lazy.lengths() == [len(r["input_ids"]) for r in eager.rows]
    assert lazy.head(3).rows == [{k: lazy[i][k] for k in lazy[i]} for i in range(3)]


def test_max_passages_is_a_seeded_random_choice(tmp_path, tokenizer):
    path, _ = corpus_file(tmp_path)
    a, n = encode_corpus(path, tokenizer, 64, 10, 1, tmp_path / "cache")
    b, _ = encode_corpus(path, tokenizer, 64, 10, 1, tmp_path / "cache")
    c, _ = encode_corpus(path, tokenizer, 64, 10, 2, tmp_path / "cache")
    ids = lambda d: [d[i]["input_ids"] for i in range(len(d))]  # noqa: E731
    assert n == 10 and len(a) == 10 and ids(a) == ids(b) and ids(a) != ids(c)
    first_ten = encode_corpus(path, tokenizer, 64, None, 1, tmp_path / "cache")[0]
    assert ids(a) != ids(first_ten)[:10]  # not simply the first passages


def test_bad_corpora_say_what(tmp_path, tokenizer):
    with pytest.raises(TinyDistillError, match="corpus not found"):
        encode_corpus(tmp_path / "missing.txt", tokenizer, 16, None, 0, tmp_path / "cache")
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(TinyDistillError, match="holds no text"):
        encode_corpus(tmp_path / "empty.txt", tokenizer, 16, None, 0, tmp_path / "cache")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(TinyDistillError, match="not UTF-8"):
        encode_corpus(tmp_path / "latin1.txt", tokenizer, 16, None, 0, tmp_path / "cache")


@pytest.mark.slow
def test_general_distillation_on_a_lazily_read_corpus(tmp_path, tiny_teacher_dir):
    from tinydistill.config import load_config
    from tinydistill.stages import general

    path, _ = corpus_file(tmp_path)
    cfg = load_config(
        None,
        [
            f"teacher={tiny_teacher_dir}",
            "student={layers: 2, hidden: 16, heads: 4, ffn: 32}",
            f"general.corpus={path}",
            "general.max_passages=30",
            "general.max_length=16",
            "general.train.batch_size=8",
            "general.train.epochs=1",
            "report.speed_examples=8",
        ],
    )
    out = general(cfg, tmp_path / "general")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["passages"] == 30 and metrics["windows"] >= 30 and metrics["steps"] == -(-metrics["windows"] // 8)
    assert metrics["objective_after"]["total"] < metrics["objective_before"]["total"]
