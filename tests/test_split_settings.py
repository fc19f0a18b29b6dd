"""Each split's file read its own way: per-split blocks (data.train / dev / test), label_map, several text columns
joined into one text, and test held out of train (data.test_fraction) apart from dev."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tinydistill.config import DataConfig
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import task_info


def _data(**kw) -> tuple[DataConfig, object]:
    cfg = DataConfig(task="classification", **kw)
    return cfg, task_info(cfg)


def test_a_test_file_with_its_own_layout_and_label_values(tmp_path):
    """AG News as published: train says World/Sports with a header; test has no header, the label first, as 1/2."""
    (tmp_path / "train.csv").write_text("text,label\nmarkets rally,World\ncup final,Sports\nvote,World\n")
    (tmp_path / "test.tsv").write_text("2\tgoal in extra time\n1\tsummit ends\n")
    test = {"file": str(tmp_path / "test.tsv"), "header": False, "label_column": 0, "text_column": 1}
    cfg, task = _data(train_file=str(tmp_path / "train.csv"), test={**test, "label_map": {1: "World", 2: "Sports"}})
    ex = read_split(cfg, "test", task)
    assert task.label_names == ["Sports", "World"]
    assert ex.texts == ["goal in extra time", "summit ends"] and ex.labels == [0, 1]
    assert read_split(cfg, "train", task).texts[0] == "markets rally"  # the flat settings still read train
    with pytest.raises(ValidationError, match="test_file and test.file both name the test file"):
        DataConfig(task="classification", test_file="x", test={"file": "y"})


def test_a_label_value_the_map_does_not_cover_is_refused_with_its_row(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\ngood,1\nbad,2\nodd,3\n")
    with pytest.raises(TinyDistillError, match=r"row 3: label value '3' is not in data.label_map .*'1', '2'"):
        _data(train_file=str(tmp_path / "t.csv"), label_map={"1": "pos", "2": "neg"})  # the label set reads train
    cfg, task = _data(train_file=str(tmp_path / "t.csv"), label_map={1: "pos", 2: "neg", 3: "neg"})
    assert [task.label_names[y] for y in read_split(cfg, "train", task).labels] == ["pos", "neg", "neg"]


def test_several_text_columns_are_joined(tmp_path):
    (tmp_path / "t.csv").write_text("title,body,label\nRally,Stocks rose.,a\n,Only a body.,b\n")
    cfg, task = _data(train_file=str(tmp_path / "t.csv"), text_column=["title", "body"], text_separator=". ")
    assert read_split(cfg, "train", task).texts == ["Rally. Stocks rose.", "Only a body."]  # an empty part left out
    (tmp_path / "d.csv").write_text("title,label\nOnly a title,a\n")
    cfg, task = _data(
        train_file=str(tmp_path / "t.csv"), dev_file=str(tmp_path / "d.csv"), text_column=["title", "body"]
    )
    with pytest.raises(TinyDistillError, match=r"d.csv.*no column 'body'"):
        read_split(cfg, "dev", task)


def _labelled(tmp_path, n_per_class: int = 10):
    rows = "".join(f"text {c} {i},{c}\n" for i in range(n_per_class) for c in ("a", "b"))
    (tmp_path / "t.csv").write_text("text,label\n" + rows)
    return str(tmp_path / "t.csv")


def test_test_fraction_holds_out_test_before_dev_and_they_never_meet(tmp_path):
    cfg, task = _data(train_file=_labelled(tmp_path), test_fraction=0.2, dev_fraction=4)
    train, dev, test = (read_split(cfg, s, task) for s in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (12, 4, 4)
    assert not set(train.texts) & set(dev.texts) and not set(train.texts) & set(test.texts)
    assert not set(dev.texts) & set(test.texts) and sorted(test.labels) == [0, 0, 1, 1]  # stratified
    assert read_split(cfg, "test", task).texts == test.texts  # seeded: the same rows every time
    with pytest.raises(ValidationError, match="test_fraction holds test out of train, and a test file is given"):
        DataConfig(task="classification", test_fraction=0.1, test_file="x")


def test_a_test_fraction_that_would_empty_a_class_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(f"t{i},a\n" for i in range(9)) + "lonely,b\n")
    cfg, task = _data(train_file=str(tmp_path / "t.csv"), test_fraction=0.2)
    with pytest.raises(TinyDistillError, match="test_fraction 0.2 leaves a class without an example .*'b' has 1"):
        read_split(cfg, "test", task)
