"""Soft labels from an external teacher (a column of probabilities or logits) replace the teacher model in the
prediction stage: the same losses as the live teacher when they hold its own probabilities; bad columns refused."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tinydistill.config import DataConfig, load_config
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import task_info


def _rows(glue, n: int) -> list[dict]:
    with (glue / "SST-2" / "train.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    return [{"text": r["sentence"], "label": r["label"]} for r in rows]


def _write_csv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.mark.slow
def test_soft_labels_of_the_teachers_own_probabilities_give_the_live_teachers_losses(tmp_path, glue, confident_teacher):
    from tinydistill.stages import distill

    rows = _rows(glue, 48)
    teacher = AutoModelForSequenceClassification.from_pretrained(confident_teacher).eval()
    tok = AutoTokenizer.from_pretrained(confident_teacher)
    with torch.no_grad():
        enc = tok([r["text"] for r in rows], truncation=True, max_length=32, padding=True, return_tensors="pt")
        probs = teacher(**enc).logits.softmax(-1)
    soft = [{**r, "soft": json.dumps(p.tolist())} for r, p in zip(rows, probs)]
    train = _write_csv(tmp_path / "train.csv", soft)
    dev = _write_csv(tmp_path / "dev.csv", rows[:16])
    student = tmp_path / "student"
    AutoModelForSequenceClassification.from_pretrained(confident_teacher).save_pretrained(student)  # same start
    tok.save_pretrained(student)
    sets = [
        "data.task=classification",
        "data.labels=['0', '1']",
        f"data.train_file={train}",
        f"data.dev_file={dev}",
        "data.max_length=32",
        f"student.checkpoint={student}",
        "prediction.train.max_steps=4",
        "prediction.train.batch_size=8",
        "prediction.train.log_every=1",
        "prediction.losses.temperature=2.0",
        "report.enabled=false",
    ]
    live = distill(load_config(None, [*sets, f"teacher={confident_teacher}"]), "prediction", tmp_path / "live")
    given = distill(load_config(None, [*sets, "data.soft_label_column=soft"]), "prediction", tmp_path / "file")
    a = json.loads((live / "metrics.json").read_text())
    b = json.loads((given / "metrics.json").read_text())
    assert [h["soft"] for h in b["history"]] == pytest.approx([h["soft"] for h in a["history"]], rel=1e-5)
    assert b["objective_before"]["soft"] == pytest.approx(a["objective_before"]["soft"], rel=1e-5)
    assert a["objective_before"]["soft"] > 0.05  # a real signal, not two zeros


@pytest.mark.parametrize(
    ("cell", "kind", "message"),
    [
        ("[0.5, 0.3, 0.2]", "probabilities", r"row 1, column 'soft': 3 soft labels, but the task has 2 labels"),
        ("[0.5, 0.6]", "probabilities", r"row 1, column 'soft': probabilities \[0.5, 0.6\] sum to 1.1"),
        ("[1.0, NaN]", "logits", r"row 1, column 'soft': .* holds a non-finite number"),
        ("high", "logits", r"row 1, column 'soft': expected a list of 2 numbers"),
    ],
)
def test_bad_soft_labels_say_what_and_where(tmp_path, cell, kind, message):
    path = tmp_path / "train.csv"
    path.write_text(f'text,label,soft\ngood,1,"{cell}"\nbad,0,"[0.9, 0.1]"\n', encoding="utf-8")
    cfg = DataConfig(task="classification", train_file=str(path), soft_label_column="soft", soft_labels=kind)
    with pytest.raises(TinyDistillError, match=message):
        read_split(cfg, "train", task_info(cfg))


def test_logits_are_kept_and_probabilities_become_their_logs(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": "1", "s": [0.25, 0.75]}\n{"text": "b", "label": "0", "s": [1, 0]}\n')
    cfg = DataConfig(task="classification", train_file=str(path), soft_label_column="s")
    ex = read_split(cfg, "train", task_info(cfg))
    assert torch.allclose(torch.tensor(ex.soft[0]).softmax(-1), torch.tensor([0.25, 0.75]))
    assert torch.tensor(ex.soft[1]).softmax(-1)[0] == 1.0
    logits = read_split(cfg.model_copy(update={"soft_labels": "logits"}), "train", task_info(cfg))
    assert logits.soft == [[0.25, 0.75], [1.0, 0.0]]


def test_soft_labels_without_teacher_need_a_student_folder(tmp_path):
    from tinydistill.stages import distill

    path = tmp_path / "train.csv"
    path.write_text('text,label,soft\ngood,1,"[0.1, 0.9]"\nbad,0,"[0.9, 0.1]"\n', encoding="utf-8")
    cfg = load_config(
        None,
        ["data.task=classification", f"data.train_file={path}", f"data.dev_file={path}", "data.soft_label_column=soft"],
    )
    with pytest.raises(TinyDistillError, match="the student must be a model folder"):
        distill(cfg, "prediction", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_shipped_soft_label_example_runs(tmp_path, tiny_teacher_dir, monkeypatch):
    from pathlib import Path

    from tinydistill.stages import distill

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # the example's paths are relative to the repository, as the README runs it
    cfg = load_config(
        root / "examples" / "soft-labels.yaml",
        [f"student.checkpoint={tiny_teacher_dir}", "prediction.train.max_steps=2", "report.speed_examples=4"],
    )
    out = distill(cfg, "prediction", tmp_path / "out")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["history"][0]["soft"] > 0


@pytest.mark.slow
def test_a_transfer_set_is_labelled_by_the_teacher_and_skipped_by_the_hard_loss(tmp_path, glue, confident_teacher):
    from tinydistill.stages import distill
    from tinydistill.tasks import SequenceClassification

    rows = _rows(glue, 80)
    train = _write_csv(tmp_path / "train.csv", rows[:16])
    dev = _write_csv(tmp_path / "dev.csv", rows[:8])
    (tmp_path / "transfer.txt").write_text("".join(r["text"] + "\n" for r in rows[16:]), encoding="utf-8")
    sets = [
        "data.task=classification",
        "data.labels=['0', '1']",
        f"data.train_file={train}",
        f"data.dev_file={dev}",
        "data.max_length=32",
        f"teacher={confident_teacher}",
        "student={layers: 1, hidden: 16, heads: 4, ffn: 32}",
        "prediction.train.epochs=1",
        "prediction.train.batch_size=16",
        "prediction.losses.hard_weight=1.0",
        "report.enabled=false",
    ]
    alone = json.loads((distill(load_config(None, sets), "prediction", tmp_path / "a") / "metrics.json").read_text())
    with_transfer = load_config(None, [*sets, f"data.transfer_files=['{tmp_path / 'transfer.txt'}']"])
    both = json.loads((distill(with_transfer, "prediction", tmp_path / "b") / "metrics.json").read_text())
    assert alone["steps"] == 1 and both["steps"] == 5  # 16 labelled rows, then 16 + 64 rows
    assert all(h["hard"] == h["hard"] for h in both["history"])  # finite: batches of transfer rows only count 0

    task = SequenceClassification("c", ["0", "1"], "accuracy")
    logits, labels = torch.randn(4, 2), torch.tensor([1, -100, 0, -100])
    assert torch.allclose(task.hard_loss(logits, labels), F.cross_entropy(logits[[0, 2]], labels[[0, 2]]))
    assert task.hard_loss(logits, torch.full((4,), -100)) == 0.0
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    empty = load_config(None, [*sets, f"data.transfer_files=['{tmp_path / 'empty.txt'}']"])
    with pytest.raises(TinyDistillError, match="transfer file .*empty.txt has no examples"):
        distill(empty, "prediction", tmp_path / "c")
