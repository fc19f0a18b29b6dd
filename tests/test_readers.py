"""Readers: every GLUE layout in ../shared/data/glue, generic CSV / TSV / JSONL, and bad input."""

import json

import pytest

from tinydistill.config import DataConfig
from tinydistill.data.readers import read_corpus, read_split
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import task_info

# (task, split, rows, first text prefix, first pair prefix or None, first label or None)
GLUE_CASES = [
    ("SST-2", "train", 67349, "hide new secretions", None, 0),
    ("SST-2", "dev", 872, "it 's a charming", None, 1),
    ("SST-2", "test", 1821, "uneasy mishmash", None, None),
    ("CoLA", "train", 8551, "Our friends won't buy", None, 1),  # no header row
    ("CoLA", "dev", 1043, "The sailors rode", None, 1),
    ("CoLA", "test", 1063, "Bill whistled", None, None),  # test has a header
    ("MRPC", "train", 3667, "Amrozi accused", "Referring to him", 1),  # UTF-8 BOM
    ("MRPC", "dev", 408, "He said the foodservice", '" The foodservice', 1),  # quote chars kept
    ("RTE", "dev", 277, "Dana Reeve", "Christopher Reeve had", 1),  # not_entailment -> 1
    ("RTE", "train", 2490, "No Weapons of Mass", "Weapons of Mass", 1),
    ("STS-B", "dev", 1500, "A man with a hard hat", "A man wearing", 5.0),  # regression
    ("WNLI", "train", 635, "I stuck a pin", "The carrot had", 1),
    ("QNLI", "dev", 5463, "What came into force", "As of that day", 0),  # entailment -> 0
]


@pytest.mark.parametrize("task,split,rows,text,pair,label", GLUE_CASES)
def test_every_glue_format(glue, task, split, rows, text, pair, label):
    cfg = DataConfig(task=task, dir=str(glue / task))
    ex = read_split(cfg, split, task_info(cfg), require_labels=label is not None)
    assert len(ex) == rows
    assert ex.texts[0].startswith(text)
    assert (ex.pairs[0].startswith(pair)) if pair else ex.pairs is None
    assert (ex.labels[0] == label) if label is not None else ex.labels is None


def test_glue_label_sets_and_metrics(glue):
    infos = {t: task_info(DataConfig(task=t, dir=str(glue / t))) for t in ["SST-2", "CoLA", "MRPC", "RTE", "STS-B"]}
    assert infos["RTE"].label_names == ["entailment", "not_entailment"]
    assert infos["STS-B"].is_regression and infos["STS-B"].metric == "pearson"
    assert infos["MRPC"].metric == "f1" and infos["CoLA"].metric == "matthews_corrcoef"


def test_seeded_train_subset_is_repeatable(glue):
    cfg = DataConfig(task="sst2", dir=str(glue / "SST-2"), max_train_examples=50)
    info = task_info(cfg)
    a, b = read_split(cfg, "train", info, seed=3), read_split(cfg, "train", info, seed=3)
    c = read_split(cfg, "train", info, seed=4)
    assert len(a) == 50 and a.texts == b.texts and a.texts != c.texts


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_generic_csv_tsv_jsonl(tmp_path):
    csv_file = _write(tmp_path / "t.csv", 'text,label\n"hello, world",pos\nbad day,neg\n')
    tsv_file = _write(tmp_path / "t.tsv", 'text\tlabel\nquote " inside\tpos\nplain\tneg\n')
    jsonl = _write(
        tmp_path / "t.jsonl",
        json.dumps({"text": "a", "other": "b", "y": "neg"})
        + "\n\n"
        + json.dumps({"text": "c", "other": "d", "y": "pos"})
        + "\n",
    )
    cfg = DataConfig(task="classification", train_file=csv_file)
    info = task_info(cfg)
    assert info.label_names == ["neg", "pos"]
    ex = read_split(cfg, "train", info)
    assert ex.texts == ["hello, world", "bad day"] and ex.labels == [1, 0]
    ex = read_split(DataConfig(task="classification", train_file=tsv_file), "train", info)
    assert ex.texts == ['quote " inside', "plain"]
    cfg = DataConfig(task="classification", train_file=jsonl, text_pair_column="other", label_column="y")
    ex = read_split(cfg, "train", info)
    assert ex.texts == ["a", "c"] and ex.pairs == ["b", "d"] and ex.labels == [0, 1]


@pytest.mark.parametrize(
    "content,kwargs,msg",
    [
        ("text,label\na,1\n", {"text_column": "sentence"}, "no column 'sentence'; columns are text, label"),
        ("text,label\n", {}, "has no examples"),
        ("", {}, "has no examples"),
        ("text,label\na,pos\nb,maybe\n", {"labels": ["neg", "pos"]}, "row 2: label 'maybe' is not in the label set"),
        ("text,label\na,1.5\nb,nan\n", {"task": "regression"}, "row 2: regression target 'nan' is not finite"),
        ("text,label\na,high\n", {"task": "regression"}, "not a number"),
        ("text,label\n ,pos\n", {"labels": ["pos"]}, "row 1 has an empty text"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, content, kwargs, msg):
    path = _write(tmp_path / "bad.csv", content)
    cfg = DataConfig(**{"task": "classification", "train_file": path, **kwargs})
    with pytest.raises(TinyDistillError, match=msg):
        read_split(cfg, "train", task_info(cfg))


def test_missing_file_folder_and_non_utf8(tmp_path, glue):
    with pytest.raises(TinyDistillError, match="train file not found"):
        read_split(
            DataConfig(task="classification", train_file=str(tmp_path / "nope.csv"), labels=["a"]),
            "train",
            task_info(DataConfig(task="classification", labels=["a"])),
        )
    cfg = DataConfig(task="classification", train_file=str(tmp_path), labels=["a"])
    with pytest.raises(TinyDistillError, match="is a folder"):
        read_split(cfg, "train", task_info(cfg))
    (tmp_path / "latin.csv").write_bytes(b"text,label\ncaf\xe9,a\n")
    cfg = DataConfig(task="classification", train_file=str(tmp_path / "latin.csv"), labels=["a"])
    with pytest.raises(TinyDistillError, match="not UTF-8"):
        read_split(cfg, "train", task_info(cfg))
    with pytest.raises(TinyDistillError, match="unknown task 'sst-3'"):
        task_info(DataConfig(task="sst-3", dir=str(glue / "SST-2")))
    with pytest.raises(TinyDistillError, match="QNLI/train.tsv"):
        cfg = DataConfig(task="qnli", dir=str(glue / "QNLI"))
        read_split(cfg, "train", task_info(cfg))


def test_corpus_file_and_folder(tmp_path):
    (tmp_path / "a.txt").write_text("first passage\n\nsecond passage\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("third\n", encoding="utf-8")
    assert read_corpus(tmp_path / "a.txt") == ["first passage", "second passage"]
    assert read_corpus(tmp_path) == ["first passage", "second passage", "third"]
    assert read_corpus(tmp_path, max_passages=2) == ["first passage", "second passage"]
    with pytest.raises(TinyDistillError, match="corpus not found"):
        read_corpus(tmp_path / "missing.txt")
