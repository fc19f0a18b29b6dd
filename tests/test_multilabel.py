"""Multi-label classification: the labels as lists, separated values, 0/1 columns or ids into a names file; soft and
hard binary cross-entropy; micro, macro and example-based F1; the whole recipe on a GoEmotions slice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tinydistill import losses as L
from tinydistill.config import DataConfig
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import MultiLabel, task_info, task_of_model


def _read(tmp_path, body: str, name: str = "t.csv", **kw):
    (tmp_path / name).write_text(body, encoding="utf-8")
    cfg = DataConfig(task="multi-label", train_file=str(tmp_path / name), **kw)
    task = task_info(cfg)
    return task, read_split(cfg, "train", task)


def test_soft_bce_is_the_two_class_soft_cross_entropy_per_label():
    torch.manual_seed(0)
    s, t = torch.randn(4, 3), torch.randn(4, 3) * 3
    pairs = lambda z: torch.stack([z, torch.zeros_like(z)], -1).view(-1, 2)  # noqa: E731 (each label: softmax of (z, 0))
    for temperature in (1.0, 2.0, 4.0):
        ours = L.soft_binary_cross_entropy(s, t, temperature)
        two_class = L.soft_cross_entropy(pairs(s), pairs(t), temperature)
        assert torch.allclose(ours, two_class, atol=1e-6), (temperature, ours, two_class)
    z = t.clone().requires_grad_()
    L.soft_binary_cross_entropy(z, t, 2.0).backward()
    assert z.grad.abs().max() < 1e-7  # the student that matches its teacher is at the minimum
    gold = (torch.rand(4, 3) > 0.5).float()
    assert torch.allclose(L.hard_binary_cross_entropy(s, gold), torch.nn.BCEWithLogitsLoss()(s, gold))


def test_labels_as_lists_separated_values_columns_and_ids(tmp_path):
    task, ex = _read(tmp_path, 'text,label\ngreat,"[""joy"", ""love""]"\nmeh,\nwow,surprise\n')
    assert task.label_names == ["joy", "love", "surprise"]
    assert ex.labels == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]  # a row with no label is kept
    _, ex = _read(tmp_path, "text\tlabel\na\tx|y\nb\ty\n", name="t.tsv", multilabel={"label_separator": "|"})
    assert ex.labels == [[1, 1], [0, 1]]
    task, ex = _read(tmp_path, "text,toxic,spam\na,1,0\nb,1,1\n", multilabel={"label_columns": ["toxic", "spam"]})
    assert task.label_names == ["toxic", "spam"] and ex.labels == [[1, 0], [1, 1]]
    (tmp_path / "names.txt").write_text("anger\njoy\nneutral")
    task, ex = _read(
        tmp_path,
        '"Dude. ""Stop."" "\t1,2\teid1\nfine\t2\teid2\n',
        name="go.tsv",
        header=False,
        text_column=0,
        label_column=1,
        quoting=True,
        multilabel={"label_names_file": str(tmp_path / "names.txt")},
    )
    assert task.label_names == ["anger", "joy", "neutral"] and ex.labels == [[0, 1, 1], [0, 0, 1]]
    assert ex.texts[0] == 'Dude. "Stop." '


def test_augmentation_keeps_each_rows_labels_and_the_files_own_layout(tmp_path):
    from tinydistill.augment.core import augment_data
    from tinydistill.config import load_config

    (tmp_path / "v.txt").write_text("great 1 0\ngood 0.9 0.1\nfilm 0 1\nmovie 0.1 0.9\n")
    (tmp_path / "names.txt").write_text("anger\njoy\nneutral")
    body = '"A ""great"" film"\t1,2\teid1\nthe film\t2\teid2\nnothing here\t\teid3\n'  # GoEmotions: quoted, no header
    (tmp_path / "go.tsv").write_text(body, encoding="utf-8")
    sets = [
        "data.task=multi-label",
        f"data.train_file={tmp_path}/go.tsv",
        f"data.dev_file={tmp_path}/go.tsv",
        "data.header=false",
        "data.quoting=true",
        "data.text_column=0",
        "data.label_column=1",
        f"data.multilabel.label_names_file={tmp_path}/names.txt",
        f"augment.word_vectors={tmp_path}/v.txt",
        "augment.candidates=1",
        "augment.probability=1.0",
    ]
    result = augment_data(load_config(None, sets), tmp_path / "aug")
    task = task_info(result.data)
    ex = read_split(result.data, "train", task)
    assert ex.texts == ['A "great" film', 'A "good" movie', "the film", "the movie", "nothing here"]
    assert ex.labels == [[0, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1], [0, 0, 0]]  # no header row read as data


@pytest.mark.parametrize(
    ("body", "kw", "message"),
    [
        ("text,label\na,joy\nb,fear\n", {"labels": ["joy", "love"]}, "row 2: label 'fear' is not in the label set"),
        ('text,label\na,"[""joy"""\n', {}, "row 1: label list .* is not a valid JSON list"),
        ("text,a,b\nx,1,2\ny,0,1\n", {"multilabel": {"label_columns": ["a", "b"]}}, "row 1: label column 'b' holds 2"),
        ("text,label\na,joy\n", {}, "at least two labels"),
    ],
)
def test_bad_labels_are_refused_with_their_row(tmp_path, body, kw, message):
    with pytest.raises(TinyDistillError, match=message):
        _read(tmp_path, body, **kw)


def test_micro_macro_and_example_f1_agree_with_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    gold = (rng.random((50, 4)) > 0.6).astype(int)
    logits = rng.normal(size=(50, 4)) + 2 * (gold - 0.5)
    task = MultiLabel("m", ["a", "b", "c", "d"])
    got = task.metrics(list(logits), list(gold))
    pred = (logits >= 0).astype(int)  # sigmoid >= 0.5
    assert got["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    assert got["micro_f1"] == pytest.approx(f1_score(gold, pred, average="micro"))
    assert got["example_f1"] == pytest.approx(f1_score(gold, pred, average="samples", zero_division=1.0))
    strict = MultiLabel("m", ["a", "b", "c", "d"], settings=task.settings.model_copy(update={"threshold": 0.9}))
    assert strict.metrics(list(logits), list(gold))["micro_f1"] != got["micro_f1"]
    ((heading, cols, rows),) = task.details(list(logits), list(gold))
    assert cols[3] == "F1" and [r[0] for r in rows] == ["a", "b", "c", "d"]
    assert float(rows[0][3]) == pytest.approx(f1_score(gold[:, 0], pred[:, 0]), abs=5e-4)


def test_a_tuned_threshold_is_the_best_on_dev_saved_in_the_config_and_scored_with(tokenizer):
    """tune picks the grid's best dev macro F1 (brute force over the grid agrees), writes it into the model's config;
    evaluate_model then scores at it, unless data.multilabel.threshold is set; a new stage drops it."""
    from sklearn.metrics import f1_score
    from transformers import BertForSequenceClassification

    from tests.conftest import tiny_bert_config
    from tinydistill.data.loaders import EncodedDataset
    from tinydistill.evaluate import evaluate_model, predict
    from tinydistill.tasks.multilabel import THRESHOLD_KEY, THRESHOLDS, MultiLabelSettings

    rng = np.random.default_rng(1)
    gold = (rng.random((60, 3)) > 0.7).astype(int)
    logits = rng.normal(size=(60, 3)) - 1.5 + 1.5 * gold  # under-confident: the best threshold is below 0.5
    task = MultiLabel("m", ["a", "b", "c"], settings=MultiLabelSettings(tune_threshold=True))
    model = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, layers=1, **task.config_kwargs()))
    got = task.tune(model, list(logits), list(gold))
    probs = 1 / (1 + np.exp(-logits))
    brute = [f1_score(gold, (probs >= t).astype(int), average="macro", zero_division=0.0) for t in THRESHOLDS]
    assert got["threshold"] == getattr(model.config, THRESHOLD_KEY) == THRESHOLDS[int(np.argmax(brute))]
    assert got["macro_f1"] == pytest.approx(max(brute)) and max(brute) > brute[45]  # better than at 0.5
    assert got["threshold"] < 0.5

    with torch.no_grad():  # every sigmoid 0.45: all labels predicted at the tuned threshold, none at 0.5
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(float(np.log(0.45 / 0.55)))
    rows = [{"input_ids": [2, 3 + i % 7, 4], "labels": [float(v) for v in g]} for i, g in enumerate(gold)]
    loader = MultiLabel("m", ["a", "b", "c"]).loader(EncodedDataset(rows), tokenizer, 16)
    plain = MultiLabel("m", ["a", "b", "c"])
    outputs, golds = predict(model, loader, plain)
    scored = evaluate_model(model, loader, plain)
    assert scored == plain.at(got["threshold"]).metrics(outputs, golds) != plain.metrics(outputs, golds)
    fixed = MultiLabel("m", ["a", "b", "c"], settings=MultiLabelSettings(threshold=0.5))
    assert evaluate_model(model, loader, fixed) == plain.metrics(outputs, golds)  # a set threshold wins
    task.init_head(model, EncodedDataset(rows))
    assert not hasattr(model.config, THRESHOLD_KEY)  # weights trained anew are not scored at the old choice
    with pytest.raises(ValueError, match="threshold or tune_threshold"):
        MultiLabelSettings(threshold=0.4, tune_threshold=True)


GOEMOTIONS = [
    "data.task=multi-label",
    "data.header=false",
    "data.text_column=0",
    "data.label_column=1",
    "data.quoting=true",
    "data.max_train_examples=48",
    "data.max_eval_examples=24",
    "data.max_length=24",
]


@pytest.mark.slow
def test_the_recipe_on_goemotions_and_the_student_in_a_plain_pipeline(
    monkeypatch, capsys, tmp_path, tiny_teacher_dir, glue
):
    from transformers import AutoConfig, pipeline

    from tests.helpers import run_cli

    data = glue.parent / "multilabel" / "goemotions"
    section = f"data.multilabel={{label_names_file: {data / 'emotions.txt'}, tune_threshold: true}}"
    sets = [*GOEMOTIONS, f"data.dir={data}", section]
    sets += ["student={layers: 2, hidden: 16, heads: 4, ffn: 32}", "report.speed_examples=4"]
    sets += [f"{s}.train.max_steps=2" for s in ("general", "finetune", "intermediate", "prediction")]
    args = [a for s in sets for a in ("-s", s)]
    code, out, err = run_cli(
        monkeypatch, capsys, "pipeline", "--teacher", str(tiny_teacher_dir), "-o", str(tmp_path / "run"), *args
    )
    assert code == 0, err
    student = tmp_path / "run" / "4-prediction"
    config = AutoConfig.from_pretrained(student)
    assert config.problem_type == "multi_label_classification" and config.num_labels == 28
    assert task_of_model(config, student) is MultiLabel
    tuned = json.loads((student / "metrics.json").read_text())["dev"]
    assert config.multilabel_threshold == tuned["threshold"]  # chosen on dev, saved with the model, reported
    assert f"## Per label (dev, threshold {tuned['threshold']:g})" in (student / "report.md").read_text()
    scores = pipeline("text-classification", model=str(student), top_k=None)(["thank you so much"])[0]
    assert len(scores) == 28 and all(0 < s["score"] < 1 for s in scores)
    assert abs(sum(s["score"] for s in scores) - 1) > 1e-3  # sigmoids, not a softmax
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", str(student), "--split", "test")
    assert code == 0, err
    got = json.loads(out)
    assert got["examples"] == 24 and 0 <= got["macro_f1"] <= got["example_f1"] + 1


def test_a_new_head_starts_at_the_labels_log_odds_and_a_trained_one_is_kept(tokenizer):
    from transformers import BertForSequenceClassification

    from tests.conftest import tiny_bert_config
    from tinydistill.data.loaders import EncodedDataset

    task = MultiLabel("m", ["a", "b", "c"])
    model = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, layers=1, **task.config_kwargs()))
    assert not model.classifier.bias.any()  # transformers starts a new head's bias at zero
    labels = ([1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    rows = [{"input_ids": [1], "labels": y} for y in labels]
    task.init_head(model, EncodedDataset(rows))
    rate = np.array([0.75, 0.25, 1e-4])  # a label never seen is clipped, not -inf
    assert np.allclose(model.classifier.bias.detach().numpy(), np.log(rate / (1 - rate)), atol=1e-5)
    trained = model.classifier.bias.detach().clone()
    task.init_head(model, EncodedDataset([{"input_ids": [1], "labels": [0.0, 0.0, 1.0]}]))
    assert torch.equal(model.classifier.bias.detach(), trained)  # a head that has learnt is not reset


@pytest.mark.slow
def test_a_distilled_students_new_head_starts_at_the_log_odds(monkeypatch, capsys, tmp_path, tokenizer, glue):
    """The student copies the teacher's layers, not its head: the prediction stage starts that head from the training
    labels (at a learning rate too small to move it, the saved biases are still the log-odds)."""
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    from tests.conftest import tiny_bert_config
    from tests.helpers import run_cli
    from tinydistill.config import load_config

    data = glue.parent / "multilabel" / "goemotions"
    sets = [*GOEMOTIONS, f"data.dir={data}", f"data.multilabel={{label_names_file: {data / 'emotions.txt'}}}"]
    cfg = load_config(None, sets)
    task = task_info(cfg.data)
    teacher = tmp_path / "teacher"
    BertForSequenceClassification(
        tiny_bert_config(tokenizer.vocab_size, layers=2, **task.config_kwargs())
    ).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    sets += ["student.every_k_teacher_layers=2", "prediction.train.max_steps=1", "prediction.train.learning_rate=1e-12"]
    sets += ["prediction.losses={soft_weight: 1, hard_weight: 1}", "report.enabled=false"]
    args = ["distill", "--stage", "prediction", "--teacher", str(teacher), "-o", str(tmp_path / "out")]
    code, _, err = run_cli(monkeypatch, capsys, *args, *[a for s in sets for a in ("-s", s)])
    assert code == 0, err
    rate = np.clip(np.asarray(read_split(cfg.data, "train", task, seed=cfg.seed).labels).mean(0), 1e-4, 1 - 1e-4)
    bias = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").classifier.bias.detach().numpy()
    assert np.allclose(bias, np.log(rate / (1 - rate)), atol=1e-4)


def test_the_threshold_is_tuned_on_the_kept_evaluations_outputs_without_predicting_dev_again(
    monkeypatch, tmp_path, tiny_teacher_dir, glue
):
    """The stage tunes and reports from the dev outputs of the evaluation whose weights it saves: no further dev
    pass, and a fresh evaluation of the saved model scores exactly what the stage reported."""
    from transformers import AutoConfig

    from tinydistill.config import load_config
    from tinydistill.evaluate import evaluate
    from tinydistill.stages import finetune, template

    passes = []
    predict = template.predict
    monkeypatch.setattr(template, "predict", lambda *a, **kw: passes.append(1) or predict(*a, **kw))
    data = glue.parent / "multilabel" / "goemotions"
    section = f"data.multilabel={{label_names_file: {data / 'emotions.txt'}, tune_threshold: true}}"
    sets = [*GOEMOTIONS, f"data.dir={data}", section, f"teacher={tiny_teacher_dir}", f"cache_dir={tmp_path / 'c'}"]
    sets += ["finetune.train.epochs=3", "finetune.train.batch_size=16", "finetune.train.learning_rate=1e-3"]
    cfg = load_config(None, sets)
    out = finetune(cfg, tmp_path / "teacher")
    metrics = json.loads((out / "metrics.json").read_text())
    assert passes == [] and len(metrics["evals"]) == 3
    assert "## Per label (dev, threshold" in (out / "report.md").read_text()
    assert metrics["best"]["step"] == 3  # no later evaluation beat the first: the saved weights are step 3's
    assert AutoConfig.from_pretrained(out).multilabel_threshold == metrics["dev"]["threshold"]
    fresh = evaluate(cfg, out, "dev")
    for key in ("macro_f1", "micro_f1", "example_f1"):
        assert fresh[key] == pytest.approx(metrics["dev"][key], abs=1e-9), key


def test_a_transfer_set_is_labelled_by_the_teachers_sigmoids_and_skipped_by_the_hard_loss(
    monkeypatch, capsys, tmp_path, tokenizer, glue
):
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    from tests.conftest import tiny_bert_config
    from tests.helpers import run_cli
    from tinydistill.config import load_config

    task = MultiLabel("m", ["a", "b", "c"])
    student, gold = torch.randn(4, 3), torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 0]])
    with_rows = torch.cat([gold[:2], torch.full((1, 3), float("nan")), gold[2:3]])
    assert torch.isclose(task.hard_loss(student, with_rows), task.hard_loss(student[[0, 1, 3]], gold[:3]))
    assert task.hard_loss(student[:1], torch.full((1, 3), float("nan"))) == 0  # a batch of transfer rows only
    data = glue.parent / "multilabel" / "goemotions"
    sets = [*GOEMOTIONS, f"data.dir={data}", f"data.multilabel={{label_names_file: {data / 'emotions.txt'}}}"]
    task = task_info(load_config(None, sets).data)
    teacher = tmp_path / "teacher"
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, layers=2, **task.config_kwargs()))
    model.save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    (tmp_path / "more.txt").write_text("what a lovely day\nthis is awful\nno idea what you mean\n", encoding="utf-8")
    sets += [f"data.transfer_files=[{tmp_path / 'more.txt'}]", "student.every_k_teacher_layers=2"]
    sets += ["prediction.train.max_steps=3", "prediction.losses={soft_weight: 1, hard_weight: 1}"]
    sets += ["report.enabled=false", f"cache_dir={tmp_path / 'cache'}"]
    args = ["distill", "--stage", "prediction", "--teacher", str(teacher), "-o", str(tmp_path / "out")]
    code, out, err = run_cli(monkeypatch, capsys, *args, *[a for s in sets for a in ("-s", s)])
    assert code == 0, err
    assert "transfer set: 3 unlabelled examples beside 48 labelled ones" in out
    history = json.loads((tmp_path / "out" / "metrics.json").read_text())["history"]
    assert all(np.isfinite(h["hard"]) and np.isfinite(h["soft"]) for h in history)
    bias = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").classifier.bias
    assert torch.isfinite(bias).all()  # the new head's log-odds come from the labelled rows alone
