"""Teacher and student with different tokenizers: each model gets its own tokenization, intermediate losses
compare what corresponds (same pieces: position by position; other pieces: word by word, no attention)."""

import json

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from tokenizers.processors import TemplateProcessing
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    MPNetConfig,
    MPNetForSequenceClassification,
    MPNetTokenizer,
    PreTrainedTokenizerFast,
)

from tests.conftest import tiny_bert_config
from tests.helpers import distill_args, run_cli, slice_of
from tinydistill import losses as L
from tinydistill.data.alignment import encode_pair
from tinydistill.data.loaders import make_loader


@pytest.fixture(scope="module")
def mpnet_tokenizer(tokenizer):
    """all-mpnet-base-v2's tokenizer, rebuilt from the BERT vocabulary: <s> <pad> </s> <unk> first (ids + 4)."""
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3} | {t: i + 4 for t, i in tokenizer.get_vocab().items()}
    vocab["<mask>"] = len(vocab)
    return MPNetTokenizer(vocab=vocab)


@pytest.fixture(scope="module")
def word_tokenizer(tokenizer):
    """A tokenizer that cuts whole words only (different pieces from WordPiece): BERT's whole-word entries."""
    words = ["[UNK]", "[CLS]", "[SEP]", "[PAD]"] + sorted(
        t for t in tokenizer.get_vocab() if not t.startswith(("##", "[")) and t != "unbelievably"
    )
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.normalizer = tokenizer.backend_tokenizer.normalizer
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]"
    )


def test_same_pieces_align_position_by_position(tokenizer, mpnet_tokenizer):
    rows, kind = encode_pair(["Hello, unbelievably tokenised world!"], ["second part"], tokenizer, mpnet_tokenizer, 64)
    assert kind == "positions"
    row = rows[0]
    student = tokenizer.convert_ids_to_tokens(row["input_ids"])
    teacher = mpnet_tokenizer.convert_ids_to_tokens(row["teacher_input_ids"])
    assert len(teacher) == len(student) + 1  # MPNet puts </s></s> between the two texts
    for i, j in enumerate(row["align_positions"]):
        if student[i] == "[CLS]":
            assert teacher[j] == "<s>"
        elif student[i] == "[SEP]":
            assert teacher[j] == "</s>"
        else:
            assert teacher[j] == student[i] and row["teacher_input_ids"][j] == row["input_ids"][i] + 4


@pytest.mark.parametrize("teacher_is_mpnet", [True, False])
def test_a_pair_longer_than_max_length_keeps_the_same_pieces_on_both_sides(
    tokenizer, mpnet_tokenizer, teacher_is_mpnet
):
    """MPNet adds one more special token to a pair: truncated at one max_length, it would keep one piece fewer."""
    student, teacher = (tokenizer, mpnet_tokenizer) if teacher_is_mpnet else (mpnet_tokenizer, tokenizer)
    long_a, long_b = "the quick brown fox jumps over the lazy dog " * 3, "a second text that is rather long " * 3
    rows, kind = encode_pair([long_a, "short"], [long_b, "pair"], student, teacher, 24)
    assert kind == "positions"
    assert max(len(r["input_ids"]) for r in rows) <= 24 and max(len(r["teacher_input_ids"]) for r in rows) <= 24
    for row in rows:
        s_tokens = student.convert_ids_to_tokens(row["input_ids"])
        t_tokens = teacher.convert_ids_to_tokens(row["teacher_input_ids"])
        specials = set(student.all_special_tokens) | set(teacher.all_special_tokens)
        assert [t for t in s_tokens if t not in specials] == [t for t in t_tokens if t not in specials]
        for i, j in enumerate(row["align_positions"]):
            if s_tokens[i] not in specials:
                assert t_tokens[j] == s_tokens[i]


def test_other_pieces_align_word_by_word(tokenizer, word_tokenizer):
    rows, kind = encode_pair(["Hello, unbelievably world!"], None, word_tokenizer, tokenizer, 64)
    assert kind == "words"
    row = rows[0]
    teacher = tokenizer.convert_ids_to_tokens(row["teacher_input_ids"])
    words = {}
    for tok, w in zip(teacher, row["teacher_words"]):
        words.setdefault(w, []).append(tok)
    assert words[2] == ["un", "##bel", "##ie", "##va", "##bly"] and words[-1] == ["[CLS]", "[SEP]"]
    assert row["student_words"] == [-1, 0, 1, 2, 3, 4, -1]


def test_gather_and_pool():
    teacher = torch.arange(2 * 5 * 3, dtype=torch.float).view(2, 5, 3)
    pos = torch.tensor([[0, 2, 4, -1], [1, 1, 3, 0]])
    got = L.gather_positions(teacher, pos)
    assert torch.equal(got[0, 1], teacher[0, 2]) and torch.equal(got[0, 3], torch.zeros(3))
    scores = torch.randn(2, 4, 5, 5)
    g = L.gather_scores(scores, pos)
    assert g.shape == (2, 4, 4, 4) and g[1, 2, 2, 0] == scores[1, 2, 3, 1]
    mask = torch.rand(2, 1, 1, 5) > 0.5  # a padding mask broadcast over heads and queries
    assert torch.equal(L.gather_scores(mask, pos)[0, 0, 0], mask[0, 0, 0][pos[0].clamp_min(0)])
    hidden = torch.tensor([[[1.0], [3.0], [5.0], [7.0]]])
    means, counts = L.pool_words(hidden, torch.tensor([[-1, 0, 0, 1]]), 2)
    assert means.flatten().tolist() == [4.0, 7.0] and counts.flatten().tolist() == [2.0, 1.0]


def test_collation_pads_each_side_with_its_own_pad(tokenizer, mpnet_tokenizer):
    from tinydistill.data.loaders import EncodedDataset

    rows, _ = encode_pair(["short", "a somewhat longer sentence"], None, tokenizer, mpnet_tokenizer, 32)
    batch = next(
        iter(make_loader(EncodedDataset(rows), tokenizer, 2, shuffle=False, teacher_tokenizer=mpnet_tokenizer))
    )
    assert batch["input_ids"][0, -1] == tokenizer.pad_token_id and batch["teacher_input_ids"][0, -1] == 1
    assert batch["align_positions"].shape == batch["input_ids"].shape and batch["align_positions"][0, -1] == -1


@pytest.fixture(scope="module")
def mpnet_teacher(tmp_path_factory, mpnet_tokenizer):
    path = tmp_path_factory.mktemp("mpnet_teacher")
    torch.manual_seed(7)
    config = MPNetConfig(
        vocab_size=len(mpnet_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=130,
        id2label={0: "0", 1: "1"},
        label2id={"0": 0, "1": 1},
    )
    MPNetForSequenceClassification(config).save_pretrained(path)
    mpnet_tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def bert_student(tmp_path, tokenizer):
    path = tmp_path / "bert_student"
    torch.manual_seed(8)
    AutoModelForSequenceClassification.from_config(tiny_bert_config(tokenizer.vocab_size, layers=1)).save_pretrained(
        path
    )
    tokenizer.save_pretrained(path)
    return path


def _distill(teacher, student, glue, out, *extra):
    steps = ["intermediate.train.max_steps=3", "prediction.train.max_steps=3"]
    steps += ["intermediate.train.batch_size=8", "prediction.train.batch_size=8"]
    args = distill_args(teacher, out, *slice_of(32, 16, 24), *steps, stage="both", data=glue / "SST-2", student=student)
    return [*args, *extra]


@pytest.mark.slow
def test_mpnet_teacher_into_a_bert_student(monkeypatch, capsys, tmp_path, glue, mpnet_teacher, bert_student):
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, *_distill(mpnet_teacher, bert_student, glue, out))
    assert code == 0, err
    for stage in ("intermediate", "prediction"):
        metrics = json.loads((out / stage / "metrics.json").read_text())
        before, after = metrics["objective_before"], metrics["objective_after"]
        assert after["total"] < before["total"], (stage, before, after)  # the aligned losses train
        assert {"embedding", "hidden", "attention"} <= set(before) if stage == "intermediate" else "soft" in before
    saved = AutoTokenizer.from_pretrained(out / "prediction")
    assert saved.get_vocab() == AutoTokenizer.from_pretrained(bert_student).get_vocab()  # the student's own
    table = json.loads((out / "prediction" / "metrics.json").read_text())["table"]
    assert all(r["examples_per_s"] > 0 for r in table)  # each timed on its own tokenization
    from tinydistill.bench import bench
    from tinydistill.config import load_config

    cfg = load_config(out / "prediction" / "tinydistill.yaml")
    result = bench(mpnet_teacher, out / "prediction", tmp_path / "bench", cfg, examples=16, runtimes=("pytorch",))
    assert {r["model"] for r in result["rows"]} == {"teacher pytorch", "student pytorch"}
    assert all(r["score"] is not None and r["examples_per_s"] > 0 for r in result["rows"])


def test_the_teacher_cache_keys_on_the_teachers_tokenization(
    monkeypatch, capsys, tmp_path, glue, mpnet_teacher, bert_student, mpnet_tokenizer
):
    from tinydistill.cache import inputs_fingerprint
    from tinydistill.data.loaders import encode_examples, teacher_view
    from tinydistill.data.readers import Examples

    ex = Examples(["one text", "another"], None, None, "t")
    both = encode_examples(ex, AutoTokenizer.from_pretrained(bert_student), 16, mpnet_tokenizer)
    alone = encode_examples(ex, mpnet_tokenizer, 16)
    assert inputs_fingerprint(teacher_view(both)) == inputs_fingerprint(alone)
    assert inputs_fingerprint(both) != inputs_fingerprint(alone)


@pytest.mark.slow
def test_other_pieces_refuse_attention_and_keep_hidden(
    monkeypatch, capsys, tmp_path, glue, tokenizer, word_tokenizer, tiny_classifier_dir
):
    student = tmp_path / "word_student"
    torch.manual_seed(9)
    AutoModelForSequenceClassification.from_config(tiny_bert_config(len(word_tokenizer), layers=1)).save_pretrained(
        student
    )
    word_tokenizer.save_pretrained(student)
    code, _, err = run_cli(monkeypatch, capsys, *_distill(tiny_classifier_dir, student, glue, tmp_path / "a"))
    assert code == 2 and "set attention_weight: 0" in err and err.count("\n") == 1
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        *_distill(tiny_classifier_dir, student, glue, tmp_path / "b", "-s", "intermediate.losses.attention_weight=0"),
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "b" / "intermediate" / "metrics.json").read_text())
    assert metrics["objective_after"]["hidden"] < metrics["objective_before"]["hidden"]
