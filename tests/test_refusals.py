"""What users really bring, refused or handled in one line: files that are not regular files, a byte-order mark, JSON
nulls, broken sentence-transformers folders, an unwritable output, a teacher-logit cache over its budget, lengths over
a model's positions, and the messages that must say what happened."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
from transformers import AutoModelForSequenceClassification, BertModel

from tests.conftest import tiny_bert_config
from tests.helpers import run_cli
from tinydistill.config import DataConfig, load_config
from tinydistill.data import conll
from tinydistill.data.readers import read_table, read_transfer
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import task_info


@pytest.fixture
def alarm():
    """Fail instead of hanging: a read that blocks (a named pipe) is cut off after 20 s."""

    def hang(*_):
        raise TimeoutError("the read blocked")

    before = signal.signal(signal.SIGALRM, hang)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


def test_a_named_pipe_or_a_device_is_refused_before_it_is_read(tmp_path, alarm):
    fifo = tmp_path / "train.csv"
    os.mkfifo(fifo)
    with pytest.raises(TinyDistillError, match=r"data file .*train.csv is a named pipe: data files are read more"):
        read_table(fifo)
    transfer = tmp_path / "more.txt"
    os.mkfifo(transfer)
    with pytest.raises(TinyDistillError, match=r"transfer file .*more.txt is a named pipe"):
        read_transfer(DataConfig(task="classification"), transfer, -100)
    with pytest.raises(TinyDistillError, match="data file /dev/zero is a device"):
        read_table("/dev/zero")


def test_a_field_over_the_bound_is_named(tmp_path, monkeypatch):
    path = tmp_path / "huge.csv"
    path.write_text("text,label\n" + "x" * 5000 + ",pos\n", encoding="utf-8")
    limit = csv.field_size_limit(1000)  # the real bound (64 MB) at a scale a test can write
    try:
        with pytest.raises(TinyDistillError, match=r"huge.csv: field larger than field limit .*a quote left open"):
            read_table(path)
    finally:
        csv.field_size_limit(limit)


def test_a_byte_order_mark_does_not_turn_docstart_into_a_sentence(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("\ufeff-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n", encoding="utf-8")
    data = conll.read_conll(path)
    assert data.words == [["EU", "rejects"]] and data.tags == [["B-ORG", "O"]]


@pytest.mark.parametrize("value", ["null", "{}", "true"])
def test_a_json_token_that_is_not_a_word_is_refused_with_its_row(tmp_path, value):
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"tokens": ["a", "b"], "tags": ["O", "O"]}\n{"tokens": ["a", ' + value + '], "tags": ["O", "O"]}\n'
    )
    with pytest.raises(TinyDistillError, match=rf"train.jsonl: row 2, 'tokens' item 2 is {value}, not a word or tag"):
        task_info(DataConfig(task="ner", train_file=str(path)))


def _sentence_folder(path: Path, tokenizer) -> Path:
    torch.manual_seed(0)
    BertModel(tiny_bert_config(tokenizer.vocab_size, layers=1, hidden=32)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    SentenceTransformer(modules=[Transformer(str(path)), Pooling(32, "mean"), Normalize()], device="cpu").save(
        str(path)
    )
    return path


def test_broken_sentence_transformers_folders_are_named(tmp_path, tokenizer):
    good = _sentence_folder(tmp_path / "good", tokenizer)
    load = task_info(DataConfig(task="embedding", dev_file=str(good / "config.json"))).auto_model.from_pretrained
    cases = {}
    cases["object"] = shutil.copytree(good, tmp_path / "object")
    (cases["object"] / "modules.json").write_text('{"0": "Transformer"}')
    cases["not json"] = shutil.copytree(good, tmp_path / "not_json")
    (cases["not json"] / "modules.json").write_text('[{"idx": 0, "type"')
    cases["no pooling"] = shutil.copytree(good, tmp_path / "no_pooling")
    shutil.rmtree(cases["no pooling"] / "1_Pooling")
    cases["width"] = shutil.copytree(good, tmp_path / "width")
    pooling = cases["width"] / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "embedding_dimension": 64}))
    expected = {
        "object": "modules.json: expected a list of modules, each an object with 'type' and 'path' (it holds dict)",
        "not json": "modules.json is damaged: not valid JSON",
        "no pooling": "lists a Pooling module in",
        "width": "its Pooling module expects 64-dimensional token vectors, the encoder gives 32",
    }
    for name, folder in cases.items():
        with pytest.raises(TinyDistillError, match=expected[name].replace("(", r"\(").replace(")", r"\)")):
            load(str(folder))
    assert load(str(good)).output_size == 32


def _make_unwritable(folder: Path) -> bool:
    """An unwritable folder, also for root (an immutable one where chattr works); False where none can be made."""
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        folder.chmod(0o555)
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return True
    (folder / "probe").unlink()
    return False


def test_an_output_under_an_unwritable_folder_is_one_line(monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue):
    locked = tmp_path / "locked"
    if not _make_unwritable(locked):
        pytest.skip("no folder can be made unwritable here")
    try:
        args = ["export", str(tiny_classifier_dir), "-o", str(locked / "out")]
        code, _, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2 and f"cannot write to {locked}" in err and err.count("\n") == 1, err
    finally:
        subprocess.run(["chattr", "-i", str(locked)], capture_output=True)
        locked.chmod(0o755)


def _rows(tokenizer, texts):
    from tinydistill.data.loaders import EncodedDataset

    return EncodedDataset([dict(tokenizer(t, truncation=True, max_length=16)) for t in texts])


def test_teacher_logits_over_the_budget_are_not_cached_and_stale_temporaries_go(
    tmp_path, capsys, tiny_classifier_dir, tokenizer
):
    from tinydistill.cache import teacher_logits

    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir).eval()
    data = _rows(tokenizer, ["a good film", "a bad one", "fine"])
    assert teacher_logits(teacher, data, tokenizer, 2, tmp_path, budget_gb=1e-9) is None
    assert "teacher logits not cached: they would take 0.0 GB, over teacher_cache_gb = 1e-09" in capsys.readouterr().out
    folder = tmp_path / "teacher-logits"
    dead = subprocess.Popen(["true"])
    dead.wait()
    (folder / f"abc.tmp-{dead.pid}.npy").write_bytes(b"half")  # a killed writer's
    (folder / f"abc.tmp-{os.getpid()}.npy").write_bytes(b"live")  # a running one's
    logits = teacher_logits(teacher, data, tokenizer, 2, tmp_path)
    assert not (folder / f"abc.tmp-{dead.pid}.npy").exists() and (folder / f"abc.tmp-{os.getpid()}.npy").exists()
    with torch.no_grad():
        direct = teacher(**{k: torch.tensor([v]) for k, v in data.rows[1].items()}).logits[0].numpy()
    np.testing.assert_allclose(logits[1], direct, atol=1e-6)  # streamed to disk, read back memory-mapped


@pytest.mark.slow
def test_a_stage_over_the_logit_budget_runs_the_teacher_live(monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue):
    args = ["distill", "--stage", "prediction", "--teacher", str(tiny_classifier_dir), "--task", "sst-2"]
    args += ["--data-dir", str(glue / "SST-2"), "-o", str(tmp_path / "s"), "-s", "data.max_train_examples=32"]
    args += ["-s", "student={layers: 1, hidden: 16, heads: 4, ffn: 32}", "-s", "prediction.train.max_steps=2"]
    args += ["-s", "prediction.teacher_cache_gb=0", "-s", "report.enabled=false"]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "teacher logits not cached" in out and "the teacher runs live" in out
    assert (tmp_path / "s" / "metrics.json").is_file()


@pytest.mark.slow
def test_evaluate_and_compare_lower_a_length_over_the_models_positions(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue
):
    data = ["--task", "sst-2", "--data-dir", str(glue / "SST-2"), "-s", "data.max_eval_examples=16"]
    long = ["-s", "data.max_length=1000", "-s", "data.max_train_examples=16"]
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", str(tiny_classifier_dir), *data, *long)
    assert code == 0, err
    assert "max_length 1000 is more than the model" in err and "(128 positions): using 128" in err
    assert json.loads(out)["examples"] == 16  # stdout is the JSON alone; status lines go to stderr
    sets = ["data.task=sst-2", f"data.dir={glue / 'SST-2'}", "data.max_eval_examples=16", "data.max_length=1000"]
    args = [
        "compare",
        str(tiny_classifier_dir),
        "--teacher",
        str(tiny_classifier_dir),
        *[a for s in sets for a in ("-s", s)],
    ]
    code, out, err = run_cli(monkeypatch, capsys, *args, "-o", str(tmp_path / "cmp"))
    assert code == 0, err
    assert "using 128" in out


def test_soft_labels_from_a_column_say_the_teachers_logits_are_not_used(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir
):
    rows = [("a good film", "1", "[0.2, 0.8]"), ("a bad film", "0", "[0.9, 0.1]")] * 8
    train = tmp_path / "train.csv"
    with train.open("w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label", "soft"), *rows])
    args = ["distill", "--stage", "prediction", "--teacher", str(tiny_classifier_dir), "-o", str(tmp_path / "s")]
    sets = ["data.task=classification", "data.labels=['0', '1']", f"data.train_file={train}", f"data.dev_file={train}"]
    sets += ["data.soft_label_column=soft", "student={layers: 1, hidden: 16, heads: 4, ffn: 32}"]
    sets += ["prediction.train.max_steps=2", "report.enabled=false"]
    code, out, err = run_cli(monkeypatch, capsys, *args, *[a for s in sets for a in ("-s", s)])
    assert code == 0, err
    assert "soft targets from data.soft_label_column 'soft': the teacher" in out and "is not run for them" in out


def test_relation_heads_of_zero_is_a_range_error():
    with pytest.raises(TinyDistillError, match="relation_heads must be at least 1 .*got 0"):
        load_config(None, ["intermediate.losses.relation_heads=0"])


@pytest.mark.slow
def test_resume_with_nothing_to_resume_says_so(monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue):
    args = ["distill", "--stage", "prediction", "--teacher", str(tiny_classifier_dir), "--task", "sst-2"]
    args += ["--data-dir", str(glue / "SST-2"), "-o", str(tmp_path / "s"), "-s", "data.max_train_examples=16"]
    args += ["-s", "student={layers: 1, hidden: 16, heads: 4, ffn: 32}", "-s", "prediction.train.max_steps=1"]
    code, out, err = run_cli(monkeypatch, capsys, *args, "-s", "report.enabled=false", "--resume")
    assert code == 0, err
    assert "--resume: no complete checkpoint in" in out and "starting at step 0" in out


def test_an_interrupted_export_does_not_advise_checkpoints(tmp_path):
    from tinydistill.cli import interrupted_message

    line = interrupted_message(signal.SIGTERM, "export", [tmp_path / "onnx"])
    assert "checkpoint_every" not in line and line.endswith("run the same command again")
    assert "checkpoint_every" in interrupted_message(signal.SIGTERM, "distill", [tmp_path / "s"])
