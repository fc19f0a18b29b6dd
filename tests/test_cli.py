"""The command line: bad input gets one line on stderr, a non-zero exit, no traceback, no finished-looking output."""

import subprocess
import sys

import pytest
import torch
from transformers import BertForSequenceClassification

from tests.conftest import tiny_bert_config
from tests.helpers import run_cli


def _csv(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def nan_teacher(tmp_path, tokenizer):
    cfg = tiny_bert_config(tokenizer.vocab_size, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan_teacher")
    tokenizer.save_pretrained(tmp_path / "nan_teacher")
    return tmp_path / "nan_teacher"


def test_bad_inputs(monkeypatch, capsys, tmp_path, tiny_classifier_dir, nan_teacher, glue):
    good = _csv(tmp_path / "good.csv", "text,label\nnice,pos\nbad,neg\nfine,pos\n")
    empty = _csv(tmp_path / "empty.csv", "text,label\n")
    odd = _csv(tmp_path / "odd.csv", "text,label\na,pos\nb,meh\n")
    out = tmp_path / "out"
    common = [
        "--student",
        "tinybert-4l-312d",
        "-o",
        str(out),
        "-s",
        "prediction.train.max_steps=2",
        "-s",
        "data.task=classification",
        "-s",
        f"data.dev_file={good}",
    ]
    cases = [
        (
            ["--teacher", str(tmp_path / "missing"), "-s", f"data.train_file={good}"],
            f"model not found: {tmp_path / 'missing'}",
        ),
        (["--teacher", str(nan_teacher), "-s", f"data.train_file={tmp_path / 'nope.csv'}"], "train file not found"),
        (
            ["--teacher", str(nan_teacher), "-s", f"data.train_file={good}", "-s", "data.text_column=sentence"],
            "no column 'sentence'",
        ),
        (["--teacher", str(nan_teacher), "-s", f"data.train_file={empty}"], "has no examples"),
        (
            ["--teacher", str(nan_teacher), "-s", f"data.train_file={odd}", "-s", "data.labels=[neg, pos]"],
            "label 'meh' is not in the label set",
        ),
        (["--teacher", str(nan_teacher), "-s", f"data.train_file={good}"], "the loss became nan"),
        (
            ["--teacher", str(tiny_classifier_dir), "--task", "sts-b", "--data-dir", str(glue / "STS-B")],
            "has 2 outputs but the task is a regression",
        ),
    ]
    for extra, msg in cases:
        code, stdout, err = run_cli(monkeypatch, capsys, "distill", "--stage", "prediction", *common, *extra)
        assert code == 2, (extra, err)
        assert msg in err, (msg, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_unknown_task_and_mismatched_vocab(monkeypatch, capsys, tmp_path, tiny_classifier_dir, tokenizer):
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", str(tiny_classifier_dir), "--task", "sst-3")
    assert code == 2 and "unknown task 'sst-3'" in err
    other = tmp_path / "other_student"
    BertForSequenceClassification(tiny_bert_config(500, id2label={0: "0", 1: "1"})).save_pretrained(other)
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "distill",
        "--stage",
        "prediction",
        "--teacher",
        str(tiny_classifier_dir),
        "--student",
        str(other),
        "-o",
        str(tmp_path / "o"),
        "--task",
        "sst-2",
        "--data-dir",
        "/nonexistent/unused",
    )
    assert code == 2 and "vocabularies differ" in err and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_config_errors_and_debug_traceback(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "finetune", "-s", "finetune.train.epochz=1")
    assert code == 2 and "unknown key (did you mean 'epochs'?)" in err
    res = subprocess.run(
        [sys.executable, "-m", "tinydistill.cli", "--debug", "finetune", "--teacher", "/nonexistent/x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "Traceback" in res.stderr and "model not found" in res.stderr
