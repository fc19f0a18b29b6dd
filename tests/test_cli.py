"""The command line: bad input gets one line on stderr, a non-zero exit, no traceback, no finished-looking output."""

import json
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


def test_unknown_task_and_mismatched_vocab(monkeypatch, capsys, tmp_path, tiny_classifier_dir, tokenizer, glue):
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
        str(glue / "SST-2"),
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


def test_evaluate_scores_a_test_file_alone_with_the_labels_the_model_was_trained_with(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir
):
    (tmp_path / "test.csv").write_text("text,label\na fine film,1\na dull film,0\nfine,1\n", encoding="utf-8")
    sets = ["-s", "data.task=classification", "-s", f"data.test_file={tmp_path / 'test.csv'}"]
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", str(tiny_classifier_dir), "--split", "test", *sets)
    assert code == 0, err
    assert json.loads(out)["examples"] == 3  # no train file read: the label set is the model's id2label
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", str(tmp_path / "nowhere"), *sets)
    assert code == 2 and "model not found" in err


FIRST_ERROR = """
import sys
from tinydistill.cli import main

codes = []
for args in sys.argv[1:]:
    sys.argv = ["tinydistill", *args.split()]
    try:
        main()
    except SystemExit as exc:
        codes.append(exc.code)
print(codes, sorted(m for m in ("torch", "transformers", "scipy", "sklearn", "accelerate") if m in sys.modules))
"""


def test_a_bad_input_is_refused_before_the_heavy_libraries_load(tmp_path, tiny_teacher_dir):
    """Wrong paths and columns fail in about a second: torch and transformers are never imported."""
    (tmp_path / "t.csv").write_text("sentence,label\ngood,1\nbad,0\n", encoding="utf-8")
    data = f"--task classification -s data.train_file={tmp_path / 't.csv'}"
    commands = [
        f"pipeline --teacher {tmp_path / 'nowhere'} --task sst-2 --data-dir {tmp_path}",
        f"pipeline --teacher {tiny_teacher_dir} {data} -o {tmp_path / 'a'}",  # no column 'text'
        f"finetune --teacher {tiny_teacher_dir} --task sst-2 --data-dir {tmp_path} -o {tmp_path / 'b'}",
        f"distill --stage nonsense --teacher {tiny_teacher_dir} {data}",
        f"evaluate {tmp_path / 'nowhere'}",
    ]
    done = subprocess.run([sys.executable, "-c", FIRST_ERROR, *commands], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[2, 2, 2, 2, 2] []", done.stdout + done.stderr
    assert "no column 'text'" in done.stderr and "model not found" in done.stderr
