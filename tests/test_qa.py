"""Extractive QA: reading SQuAD files and tables, windows over long contexts and their answer positions, the span
search, SQuAD EM/F1 per question, the losses over a window's positions, the model's stacked logits, bad input, and the
whole recipe through the command line on a SQuAD slice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinydistill import losses as L
from tinydistill.config import DataConfig, LossConfig
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import QuestionAnswering, task_info, task_of_model
from tinydistill.tasks.qa import IGNORE, best_span, window_labels

CONTEXT = (
    "The Amazon rainforest covers much of the Amazon basin of South America. The basin encompasses seven million "
    "square kilometres, of which five and a half million are covered by the rainforest. The majority of the forest "
    "is contained within Brazil, with sixty percent of the rainforest, followed by Peru with thirteen percent."
)
QUESTIONS = [
    ("q1", "Which country holds most of the forest?", "Brazil"),
    ("q2", "Which country follows with thirteen percent?", "Peru"),
    ("q3", "What covers much of the Amazon basin?", "The Amazon rainforest"),
]


def _squad(path, questions=QUESTIONS, context=CONTEXT, **extra) -> str:
    qas = [
        {"id": i, "question": q, "answers": [{"text": a, "answer_start": context.index(a)}], **extra}
        for i, q, a in questions
    ]
    path.write_text(
        json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]})
    )
    return str(path)


def _task(path, **kw):
    cfg = DataConfig(task="qa", train_file=str(path), dev_file=str(path), **kw)
    return cfg, task_info(cfg)


def _oracle(task, data, tokenizer):
    """Per-question outputs of a model whose logits are the window labels (1 -> high, elsewhere low)."""
    outs, golds = [], []
    for batch in task.loader(data, tokenizer, 4):
        lab = batch["labels"].float()
        o, g = task.collect(torch.where(lab == 1, 9.0, torch.where(lab == IGNORE, 5.0, 0.0)), batch)
        outs += o
        golds += g
    return outs, golds


def test_squad_file_hf_rows_and_csv_read_alike(tmp_path):
    cfg, task = _task(_squad(tmp_path / "s.json"))
    assert isinstance(task, QuestionAnswering) and task.metric == "f1"
    ex = read_split(cfg, "train", task)
    start = CONTEXT.index("Brazil")
    assert ex.texts[0] == QUESTIONS[0][1] and ex.pairs[0] == CONTEXT and ex.labels[0] == [(start, start + 6)]
    rows = [
        {"id": i, "question": q, "context": CONTEXT, "answers": {"text": [a], "answer_start": [CONTEXT.index(a)]}}
        for i, q, a in QUESTIONS
    ]
    (tmp_path / "hf.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    cfg2, _ = _task(tmp_path / "hf.jsonl")
    assert read_split(cfg2, "train", task).labels == ex.labels
    import csv

    with (tmp_path / "t.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "context", "answers"])
        for r in rows:
            w.writerow([r["question"], r["context"], json.dumps(r["answers"])])
    cfg3, _ = _task(tmp_path / "t.csv")
    assert read_split(cfg3, "train", task).labels == ex.labels


def test_augmentation_rewrites_only_the_questions_and_every_copy_keeps_its_answer(tmp_path, tokenizer):
    from tinydistill.augment.core import augment_data
    from tinydistill.config import load_config

    vectors = {"country": (1.0, 0.0), "nation": (0.98, 0.1), "forest": (0.0, 1.0), "woods": (0.1, 0.99)}
    (tmp_path / "v.txt").write_text("".join(f"{w} {x} {y}\n" for w, (x, y) in vectors.items()))
    squad = _squad(tmp_path / "s.json")
    sets = [
        "data.task=qa",
        f"data.train_file={squad}",
        f"data.dev_file={squad}",
        f"augment.word_vectors={tmp_path}/v.txt",
    ]
    sets += ["augment.probability=1.0", "augment.candidates=1"]  # one copy: each slot takes its nearest neighbour
    result = augment_data(load_config(None, sets), tmp_path / "aug")
    assert result.data.train_file == str(tmp_path / "aug" / "train.jsonl")
    task = task_info(result.data)
    original, augmented = (
        read_split(DataConfig(task="qa", train_file=squad), "train", task),
        read_split(result.data, "train", task),
    )
    rows = [json.loads(line) for line in (tmp_path / "aug" / "train.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q1-aug1", "q2", "q2-aug1", "q3"]  # q3 has no word with a neighbour
    assert augmented.texts[1] == "Which nation holds most of the woods?"  # every slot with a candidate replaced
    assert augmented.texts[3] == "Which nation follows with thirteen percent?"
    assert [augmented.texts[i] for i in (0, 2, 4)] == original.texts and set(augmented.pairs) == {CONTEXT}
    assert augmented.labels == [original.labels[i] for i in (0, 0, 1, 1, 2)]  # each copy keeps its answer span
    enc = task.encode(augmented, tokenizer, 64)
    assert [r["labels"] for r in enc.rows if r["example_index"] == 1] == [
        r["labels"] for r in enc.rows if r["example_index"] == 0
    ]  # the answer sits at the same tokens of every window: the question's length is unchanged
    assert result.metrics["examples_in"] == 3 and result.metrics["examples_out"] == 5
    (tmp_path / "folder").mkdir()
    with pytest.raises(TinyDistillError, match="augment for task qa reads data.train_file"):
        augment_data(load_config(None, [*sets, f"data.dir={tmp_path / 'folder'}"]), tmp_path / "aug-dir")
    assert not (tmp_path / "aug-dir").exists()  # nothing left that looks finished


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda qa: qa["answers"][0].update(answer_start=3), "question q1: answer 'Brazil' is not at character 3"),
        (lambda qa: qa.update(answers=[], is_impossible=True), "SQuAD 2.0's unanswerable questions"),
        (lambda qa: qa.update(answers=[]), "question q1: the question has no answer"),
        (lambda qa: qa.update(answers="Brazil"), "answers 'Brazil' are not JSON"),
        (lambda qa: qa.update(question=" "), "question q1: an empty question or context"),
    ],
)
def test_bad_answers_are_refused_naming_the_question(tmp_path, change, message):
    path = tmp_path / "s.json"
    _squad(path)
    data = json.loads(path.read_text())
    change(data["data"][0]["paragraphs"][0]["qas"][0])
    path.write_text(json.dumps(data))
    cfg, task = _task(path)
    with pytest.raises(TinyDistillError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_split(cfg, "train", task)


def test_windows_cover_long_contexts_and_label_the_answer_tokens(tmp_path, tokenizer):
    cfg, task = _task(_squad(tmp_path / "s.json"), max_length=40, qa={"doc_stride": 10})
    ex = read_split(cfg, "dev", task)
    data = task.encode(ex, tokenizer, 40)
    assert len(data) > len(ex)  # the context does not fit one window
    for row in data.rows:
        labels, k = row["labels"], row["example_index"]
        assert len(row["input_ids"]) <= 40 and len(labels) == len(row["input_ids"])
        starts = [i for i, (s, _) in enumerate(labels) if s == 1]
        ends = [i for i, (_, e) in enumerate(labels) if e == 1]
        assert len(starts) == len(ends) == 1
        if starts != [0]:  # the window holds the answer: its tokens cover exactly the answer's characters
            a, b = ex.labels[k][0]
            assert row["char_starts"][starts[0]] == a and row["char_ends"][ends[0]] == b
        assert all(lab == [IGNORE, IGNORE] for lab, cs in zip(labels[1:], row["char_starts"][1:]) if cs < 0)
    outs, golds = _oracle(task, data, tokenizer)
    assert task.metrics(outs, golds) == {"f1": 1.0, "exact_match": 1.0}  # best span over windows, per question
    assert len({o[0] for o in outs}) == len(ex)


def test_window_labels_point_at_the_first_token_when_the_answer_is_cut():
    offsets = [(0, 0), (0, 3), (0, 0), (0, 4), (5, 9), (10, 12), (0, 0)]
    in_context = [False, False, False, True, True, True, False]
    assert window_labels(in_context, offsets, (5, 9))[4] == [1, 1]
    assert window_labels(in_context, offsets, (0, 12))[3][0] == 1 and window_labels(in_context, offsets, (0, 12))[5][1]
    cut = window_labels(in_context, offsets, (10, 20))
    assert cut[0] == [1, 1] and [s for s, _ in cut].count(1) == 1
    assert window_labels(in_context, offsets, None) == [
        [0, 0],
        [IGNORE] * 2,
        [IGNORE] * 2,
        [0, 0],
        [0, 0],
        [0, 0],
        [IGNORE] * 2,
    ]


def test_best_span_keeps_to_the_context_order_and_length():
    start = torch.tensor([9.0, 1.0, 5.0, 0.0, 0.0, 0.0])
    end = torch.tensor([9.0, 0.0, 0.0, 2.0, 0.0, 6.0])
    valid = torch.tensor([False, True, True, True, True, True])
    assert best_span(start, end, valid, 20, 30) == (11.0, 2, 5)  # never the first token, which is not context
    assert best_span(start, end, valid, 20, 3) == (7.0, 2, 3)  # at most 3 tokens
    assert best_span(start, end, valid, 20, 1) == (6.0, 5, 5)
    assert best_span(start, end, valid, 1, 3) == (-float("inf"), -1, -1)  # the top start (2) and end (5): too far
    assert best_span(start, end, torch.zeros(6, dtype=torch.bool), 20, 30) == (float("-inf"), -1, -1)


def test_squad_metric_normalises_and_takes_the_best_reference():
    task = QuestionAnswering("qa")
    outs = [(0, 1.0, "the Broncos"), (0, 3.0, "Denver Broncos!"), (1, 2.0, "Carolina"), (1, -1.0, "Panthers")]
    golds = [(0, ["Denver Broncos"]), (0, ["Denver Broncos"]), (1, ["the Panthers", "Carolina Panthers"])] * 1
    got = task.metrics(outs, golds + [(1, ["the Panthers", "Carolina Panthers"])])
    assert got["exact_match"] == 0.5  # question 0 exact after normalisation; question 1 picks "Carolina"
    assert got["f1"] == pytest.approx((1 + 2 / 3) / 2)  # "Carolina" vs "Carolina Panthers": P 1, R 1/2


def test_losses_ignore_positions_no_answer_can_take():
    torch.manual_seed(0)
    s, t = torch.randn(3, 7, 2), torch.randn(3, 7, 2) * 2
    labels = torch.zeros(3, 7, 2, dtype=torch.long)
    labels[:, 1:3] = IGNORE  # the question
    labels[2, 5:] = IGNORE  # padding
    labels[0, 4, 0] = labels[0, 6, 1] = labels[1, 0, 0] = labels[1, 0, 1] = 1  # window 2 is unlabelled
    task, cfg = QuestionAnswering("qa"), LossConfig(temperature=2.0)
    soft = task.soft_loss(cfg, s, t, labels, torch.ones(3, 7))
    s2, t2 = s.clone(), t.clone()
    s2[:, 1:3], t2[:, 1:3] = 50.0, -50.0  # what the question positions hold does not matter
    assert torch.allclose(task.soft_loss(cfg, s2, t2, labels, torch.ones(3, 7)), soft)
    keep = labels[..., 0] != IGNORE
    manual = (
        sum(
            -(F.softmax(t[b, keep[b], k] / 2, -1) * F.log_softmax(s[b, keep[b], k] / 2, -1)).sum()
            for b in range(3)
            for k in (0, 1)
        )
        / 6
        * 4
    )
    assert torch.allclose(soft, manual, atol=1e-5)
    z = t.clone().requires_grad_()
    L.kl_divergence(*L.over_positions(keep, z, t)).backward()
    assert z.grad.abs().max() < 1e-6
    hard = task.hard_loss(s, labels)
    expect = (
        sum(
            F.cross_entropy(s[b, keep[b], k][None], torch.tensor([g]))
            for b, k, g in ((0, 0, 2), (0, 1, 4), (1, 0, 0), (1, 1, 0))
        )
        / 4
    )  # positions among the kept ones
    assert torch.allclose(hard, expect, atol=1e-5)


def test_the_model_stacks_start_and_end_logits_and_loads_plainly(tmp_path, tokenizer):
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    from tests.conftest import tiny_bert_config

    task = QuestionAnswering("qa")
    model = task.auto_model.from_config(tiny_bert_config(tokenizer.vocab_size, layers=1, **task.config_kwargs())).eval()
    batch = tokenizer(["who?"], ["nobody at all"], return_tensors="pt")
    out = model(**batch)
    assert torch.equal(out.logits, torch.stack([out.start_logits, out.end_logits], -1))
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert task_of_model(config, tmp_path) is QuestionAnswering
    plain = AutoModelForQuestionAnswering.from_pretrained(tmp_path).eval()(**batch)
    assert torch.allclose(plain.start_logits, out.start_logits, atol=1e-6)


def test_windows_that_hold_no_answer_and_questions_that_leave_no_room_are_refused(tmp_path, tokenizer):
    answer = "a long answer of many words, " * 8  # longer than any window's share of context
    cfg, task = _task(_squad(tmp_path / "s.json", [("z", "What?", answer)], "Start. " + answer), max_length=24)
    with pytest.raises(TinyDistillError, match="no window of any question holds its whole answer"):
        task.encode(read_split(cfg, "train", task), tokenizer, 24, training=True)
    long_q = [("l", "why " * 40 + "?", "Brazil")]
    cfg, task = _task(_squad(tmp_path / "l.json", long_q), max_length=48)
    with pytest.raises(TinyDistillError, match="leave no room for their context"):
        task.encode(read_split(cfg, "train", task), tokenizer, 48)
    cfg, task = _task(_squad(tmp_path / "s.json"))
    with pytest.raises(TinyDistillError, match="share one tokenizer"):
        task.encode(read_split(cfg, "train", task), tokenizer, 64, teacher_tokenizer=tokenizer)


@pytest.mark.slow
def test_the_recipe_on_a_squad_slice_through_every_command(monkeypatch, capsys, tmp_path, tiny_teacher_dir, glue):
    from transformers import AutoModelForQuestionAnswering

    from tests.helpers import run_cli

    squad = json.loads((glue.parent / "qa" / "squad-v1.1" / "dev-v1.1.json").read_text())
    small = {"version": "1.1", "data": [{**a, "paragraphs": a["paragraphs"][:1]} for a in squad["data"][:2]]}
    (tmp_path / "squad.json").write_text(json.dumps(small))
    data = [f"data.{k}_file={tmp_path / 'squad.json'}" for k in ("train", "dev", "test")]
    sets = [*data, "data.task=qa", "data.max_length=96", "student={layers: 2, hidden: 16, heads: 4, ffn: 32}"]
    sets += [
        "report.speed_examples=4",
        *(f"{s}.train.max_steps=2" for s in ("general", "finetune", "intermediate", "prediction")),
    ]
    args = [a for s in sets for a in ("-s", s)]
    words = sorted({w for a in small["data"] for p in a["paragraphs"] for q in p["qas"] for w in q["question"].split()})
    (tmp_path / "v.txt").write_text("".join(f"{w} {np.cos(i)} {np.sin(i)}\n" for i, w in enumerate(words)))
    augment = [
        "-s",
        "augment.enabled=true",
        "-s",
        f"augment.word_vectors={tmp_path / 'v.txt'}",
        "-s",
        "augment.copies=2",
    ]
    run = tmp_path / "run"
    pipeline = ["pipeline", "--teacher", str(tiny_teacher_dir), "-o", str(run), *args, *augment]
    code, _, err = run_cli(monkeypatch, capsys, *pipeline)
    assert code == 0, err
    augmented = json.loads((run / "0-augment" / "metrics.json").read_text())
    assert augmented["examples_out"] > augmented["examples_in"] > 10
    for stage in ("3-intermediate", "4-prediction"):  # the student reads the copies; the teacher learnt the originals
        assert str(run / "0-augment" / "train.jsonl") in (run / stage / "tinydistill.yaml").read_text()
    assert "0-augment" not in (run / "2-teacher" / "tinydistill.yaml").read_text()
    student = run / "4-prediction"
    assert "| f1 |" in (student / "report.md").read_text()
    model = AutoModelForQuestionAnswering.from_pretrained(student)
    assert model.config.architectures == [type(model).__name__]
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", str(student), "--split", "test", *args)
    assert code == 0, err
    got = json.loads(out)
    assert 0 <= got["exact_match"] <= got["f1"] <= 1 and got["examples"] > 10
    code, out, err = run_cli(monkeypatch, capsys, "export", str(student), "-o", str(tmp_path / "onnx"), *args)
    assert code == 0, err
    exported = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert exported["onnx_output"] == ["start_logits", "end_logits"] and exported["max_abs_logit_diff"] < 1e-4
    assert exported["scores"]["onnx"] == pytest.approx(exported["scores"]["pytorch"], abs=1e-6)
    bench = ["bench", str(run / "2-teacher"), str(student), "-o", str(tmp_path / "bench"), "--examples", "8"]
    code, out, err = run_cli(monkeypatch, capsys, *bench, "--runtime", "pytorch", *args)
    assert code == 0, err
    assert "| student pytorch | " in out and "f1" in out
    code, out, err = run_cli(monkeypatch, capsys, "compare", str(run), "-o", str(tmp_path / "compare"), *args)
    assert code == 0, err
    assert "| f1 |" in out and "4-prediction" in out


def test_several_teachers_mix_their_start_and_end_distributions_per_window():
    from scipy.special import softmax

    rng = np.random.default_rng(0)
    windows = [[rng.normal(size=(n, 2)) * s for n in (5, 7)] for s in (1.0, 3.0)]  # two teachers, two windows
    got = QuestionAnswering("qa").ensemble_logits(windows, [0.25, 0.75], 2.0)
    for w in range(2):
        mean = sum(share * softmax(t[w] / 2, axis=0) for t, share in zip(windows, (0.25, 0.75)))
        assert got[w].shape == windows[0][w].shape
        assert np.allclose(softmax(got[w] / 2, axis=0), mean, atol=1e-6)  # per position, start and end apart


@pytest.mark.slow
def test_two_qa_teachers_train_a_student_from_their_mean(monkeypatch, capsys, tmp_path, tokenizer):
    from transformers import BertForQuestionAnswering

    from tests.conftest import tiny_bert_config
    from tests.helpers import run_cli

    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = tmp_path / f"teacher{seed}"
        BertForQuestionAnswering(tiny_bert_config(tokenizer.vocab_size, layers=2)).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        folders.append(folder)
    data = _squad(tmp_path / "s.json")
    sets = [
        f"teachers=[{folders[0]}, {folders[1]}]",
        "data.task=qa",
        f"data.train_file={data}",
        f"data.dev_file={data}",
    ]
    sets += ["data.max_length=40", "data.qa={doc_stride: 10}", "prediction.train.max_steps=2", "report.enabled=false"]
    sets += [f"cache_dir={tmp_path / 'cache'}"]
    args = ["distill", "--stage", "prediction", "--student", str(folders[0]), "-o", str(tmp_path / "out")]
    code, out, err = run_cli(monkeypatch, capsys, *args, *[a for s in sets for a in ("-s", s)])
    assert code == 0, err
    assert "the weighted mean of 2 teachers' predictions" in out and (tmp_path / "out" / "model.safetensors").is_file()


def test_a_transfer_set_of_questions_without_answers_is_labelled_by_the_teacher(
    monkeypatch, capsys, tmp_path, tokenizer
):
    from transformers import BertForQuestionAnswering

    from tests.conftest import tiny_bert_config
    from tests.helpers import run_cli
    from tinydistill.data.readers import concat

    cfg, task = _task(_squad(tmp_path / "s.json"), max_length=40, qa={"doc_stride": 10})
    unanswerable = [
        {"id": "u", "question": "Who planted it?", "context": CONTEXT, "answers": [], "is_impossible": True}
    ]
    (tmp_path / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in unanswerable * 2))
    more = task.read_transfer(cfg, tmp_path / "more.jsonl")  # any answers are not read: SQuAD 2.0 rows are fine
    data = task.encode(concat(read_split(cfg, "train", task), more), tokenizer, 40, training=True)
    assert "have no window that holds their whole answer" not in capsys.readouterr().out
    labels = next(iter(task.loader(data, tokenizer, len(data))))["labels"]  # padded with IGNORE, in row order
    transfer = torch.tensor([r["example_index"] >= 3 for r in data.rows])  # questions 4 and 5 came from the file
    assert transfer.any() and not (labels[transfer] == 1).any() and (labels[~transfer] == 1).any()
    torch.manual_seed(0)
    logits = torch.randn(labels.shape)
    assert torch.isclose(task.hard_loss(logits, labels), task.hard_loss(logits[~transfer], labels[~transfer]))
    assert task.hard_loss(logits[transfer], labels[transfer]) == 0  # a batch of transfer windows only
    teacher = tmp_path / "teacher"
    BertForQuestionAnswering(tiny_bert_config(tokenizer.vocab_size, layers=2)).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    sets = ["data.task=qa", f"data.train_file={tmp_path / 's.json'}", f"data.dev_file={tmp_path / 's.json'}"]
    sets += ["data.max_length=40", "data.qa={doc_stride: 10}", f"data.transfer_files=[{tmp_path / 'more.jsonl'}]"]
    sets += ["prediction.train.max_steps=3", "prediction.losses={soft_weight: 1, hard_weight: 1}"]
    sets += ["report.enabled=false", f"cache_dir={tmp_path / 'cache'}"]
    args = ["distill", "--stage", "prediction", "--teacher", str(teacher), "--student", str(teacher)]
    code, out, err = run_cli(
        monkeypatch, capsys, *args, "-o", str(tmp_path / "out"), *[a for s in sets for a in ("-s", s)]
    )
    assert code == 0, err
    assert "transfer set: 2 unlabelled examples beside 3 labelled ones" in out
    history = json.loads((tmp_path / "out" / "metrics.json").read_text())["history"]
    assert all(np.isfinite(h["soft"]) and np.isfinite(h["hard"]) for h in history)
