"""Several teachers at once: the combined soft target is the weighted mean of the teachers' tempered predictions
(softmax, sigmoid, or the score itself), each teacher read in its own tokenization; what cannot work is refused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, softmax
from transformers import BertForSequenceClassification

from tests.conftest import tiny_bert_config
from tests.helpers import run_cli
from tinydistill.config import load_config
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import MultiLabel, Regression, SequenceClassification, TokenClassification

RNG = np.random.default_rng(0)
LOGITS = [RNG.normal(size=(5, 3)) * 3, RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3)) * 2]
WEIGHTS = [0.5, 0.3, 0.2]


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_the_soft_target_is_the_weighted_mean_of_the_teachers_predictions(temperature):
    t = temperature
    classes = SequenceClassification("c", ["a", "b", "c"], "accuracy").ensemble_logits(LOGITS, WEIGHTS, t)
    mean = sum(w * softmax(x / t, axis=-1) for x, w in zip(LOGITS, WEIGHTS))
    assert np.allclose(softmax(classes / t, axis=-1), mean, atol=1e-6)
    labels = MultiLabel("m", ["a", "b", "c"]).ensemble_logits(LOGITS, WEIGHTS, t)
    assert np.allclose(expit(labels / t), sum(w * expit(x / t) for x, w in zip(LOGITS, WEIGHTS)), atol=1e-6)
    scores = Regression("r").ensemble_logits([x[:, :1] for x in LOGITS], WEIGHTS, t)
    assert np.allclose(scores, sum(w * x[:, :1] for x, w in zip(LOGITS, WEIGHTS)), atol=1e-5)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["teachers=[a]"], "teachers lists one teacher: give it as `teacher:`"),
        (["teachers=[a, a]"], "teachers lists the same folder twice"),
        (["teachers=[a, b]", "teacher_weights=[1]"], "one positive weight per teacher \\(2\\)"),
        (["teachers=[a, b]", "teacher_weights=[1, 0]"], "one positive weight per teacher"),
    ],
)
def test_a_teacher_list_that_cannot_be_an_ensemble_is_refused(sets, message):
    with pytest.raises(TinyDistillError, match=message):
        load_config(None, sets)


def test_token_classification_refuses_several_teachers():
    from tinydistill.ensemble import check_ensemble

    cfg = load_config(None, ["teachers=[a, b]"])
    with pytest.raises(TinyDistillError, match="several teachers are not supported for task kind token-classif"):
        check_ensemble(cfg, TokenClassification("ner", ["O", "B-X", "I-X"]))


def _distill(monkeypatch, capsys, tmp_path, teachers, glue, student, *extra):
    args = ["distill", "--stage", "prediction", "--student", str(student), "-o", str(tmp_path / "out")]
    args += ["--task", "sst-2", "--data-dir", str(glue / "SST-2"), "-s", f"teachers=[{', '.join(map(str, teachers))}]"]
    sets = ["data.max_train_examples=24", "data.max_eval_examples=8", "data.max_length=16"]
    sets += ["prediction.train.max_steps=2", "report.enabled=false", f"cache_dir={tmp_path / 'cache'}", *extra]
    return run_cli(monkeypatch, capsys, *args, *[a for s in sets for a in ("-s", s)])


@pytest.mark.slow
def test_two_teachers_train_a_student_from_their_mean(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir, confident_teacher, glue
):
    from tinydistill.data.readers import read_split
    from tinydistill.ensemble import ensemble_targets
    from tinydistill.tasks import task_info

    teachers = [tiny_classifier_dir, confident_teacher]
    code, out, err = _distill(
        monkeypatch, capsys, tmp_path, teachers, glue, tiny_classifier_dir, "teacher_weights=[1, 3]"
    )
    assert code == 0, err
    assert "the weighted mean of 2 teachers' predictions" in out and (tmp_path / "out" / "model.safetensors").is_file()
    cfg = load_config(
        None,
        [f"teachers=[{tiny_classifier_dir}, {confident_teacher}]", "teacher_weights=[1, 3]", "data.task=sst-2"]
        + [
            f"data.dir={glue / 'SST-2'}",
            "data.max_train_examples=24",
            "data.max_length=16",
            "prediction.losses.temperature=2",
        ],
    )
    task = task_info(cfg.data)
    examples = read_split(cfg.data, "train", task)
    got = np.asarray(ensemble_targets(cfg, task, examples, 8))
    probs = [softmax(_own_logits(folder, task, examples, 16) / 2, axis=-1) for folder in teachers]
    assert np.allclose(softmax(got / 2, axis=-1), 0.25 * probs[0] + 0.75 * probs[1], atol=1e-5)


def _own_logits(folder, task, examples, length: int) -> np.ndarray:
    """(N, C) what the teacher in ``folder`` predicts on ``examples`` read with its own tokenizer."""
    from tinydistill.evaluate import predict
    from tinydistill.models import load_classifier, load_tokenizer

    tok = load_tokenizer(str(folder))
    outputs, _ = predict(
        load_classifier(str(folder), task), task.loader(task.encode(examples, tok, length), tok, 8), task
    )
    return np.stack(outputs)


def test_teachers_with_another_label_set_are_refused_before_training(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir, tokenizer, glue
):
    other = tmp_path / "other"
    BertForSequenceClassification(
        tiny_bert_config(tokenizer.vocab_size, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    ).save_pretrained(other)
    tokenizer.save_pretrained(other)
    code, _, err = _distill(monkeypatch, capsys, tmp_path, [tiny_classifier_dir, other], glue, tiny_classifier_dir)
    assert code == 2 and "label maps differ" in err and str(other) in err, err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_teachers_of_two_vocabularies_each_read_their_own_tokenization(tmp_path, tiny_classifier_dir, tokenizer, glue):
    """A BERT teacher and an MPNet teacher (ids shifted by 4, other special tokens): the combined target is the mean
    of what each predicts on its own token ids."""
    import torch
    from transformers import MPNetConfig, MPNetForSequenceClassification, MPNetTokenizer

    from tinydistill.data.readers import read_split
    from tinydistill.ensemble import ensemble_targets
    from tinydistill.tasks import task_info

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3} | {t: i + 4 for t, i in tokenizer.get_vocab().items()}
    vocab["<mask>"] = len(vocab)
    mpnet_tok, mpnet = MPNetTokenizer(vocab=vocab), tmp_path / "mpnet"
    torch.manual_seed(7)
    shape = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 64}
    config = MPNetConfig(vocab_size=len(vocab), **shape, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})
    MPNetForSequenceClassification(config).save_pretrained(mpnet)
    mpnet_tok.save_pretrained(mpnet)
    teachers = [tiny_classifier_dir, mpnet]
    cfg = load_config(
        None,
        [f"teachers=[{teachers[0]}, {teachers[1]}]", "data.task=sst-2", f"data.dir={glue / 'SST-2'}"]
        + ["data.max_train_examples=16", "data.max_length=24", f"cache_dir={tmp_path / 'cache'}"],
    )
    task = task_info(cfg.data)
    examples = read_split(cfg.data, "train", task)
    got = np.asarray(ensemble_targets(cfg, task, examples, 8))
    assert mpnet_tok(examples.texts[0])["input_ids"][0] == 0 != tokenizer(examples.texts[0])["input_ids"][0]
    probs = [softmax(_own_logits(folder, task, examples, 24), axis=-1) for folder in teachers]
    assert np.allclose(softmax(got, axis=-1), 0.5 * probs[0] + 0.5 * probs[1], atol=1e-5)


@pytest.mark.slow
def test_a_transfer_set_is_labelled_by_the_teachers_mean(tmp_path, tiny_classifier_dir, confident_teacher, glue):
    """Transfer-file sentences train the student on the teachers' combined prediction (the hard term skips them)."""
    import json

    from tinydistill.data.readers import Examples, read_transfer
    from tinydistill.ensemble import ensemble_targets
    from tinydistill.stages import distill
    from tinydistill.tasks import task_info

    sentences = [t for t in (glue / "SST-2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:41]]
    (tmp_path / "transfer.txt").write_text("".join(s.split("\t")[0] + "\n" for s in sentences), encoding="utf-8")
    sets = [f"teachers=[{tiny_classifier_dir}, {confident_teacher}]", "data.task=sst-2", f"data.dir={glue / 'SST-2'}"]
    sets += ["data.max_train_examples=24", "data.max_eval_examples=8", "data.max_length=16", "report.enabled=false"]
    sets += [
        f"student.checkpoint={tiny_classifier_dir}",
        f"cache_dir={tmp_path / 'cache'}",
        "prediction.train.epochs=1",
    ]
    sets += ["prediction.train.batch_size=16", "prediction.losses.hard_weight=1.0"]
    alone = json.loads((distill(load_config(None, sets), "prediction", tmp_path / "a") / "metrics.json").read_text())
    cfg = load_config(None, [*sets, f"data.transfer_files=['{tmp_path / 'transfer.txt'}']"])
    both = json.loads((distill(cfg, "prediction", tmp_path / "b") / "metrics.json").read_text())
    assert alone["steps"] == 2 and both["steps"] == 4  # 24 labelled rows, then 24 + 40
    assert all(h["hard"] == h["hard"] and h["soft"] > 0 for h in both["history"])

    task = task_info(cfg.data)
    transfer: Examples = read_transfer(cfg.data, tmp_path / "transfer.txt", task.no_label)
    got = np.asarray(ensemble_targets(cfg, task, transfer, 8))
    probs = [
        softmax(_own_logits(folder, task, transfer, 16), axis=-1) for folder in (tiny_classifier_dir, confident_teacher)
    ]
    assert np.allclose(softmax(got, axis=-1), 0.5 * probs[0] + 0.5 * probs[1], atol=1e-5)
