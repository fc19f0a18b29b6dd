"""Refusals: label-map and vocabulary mismatches, teachers without a task head; metrics."""

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import f1_score, matthews_corrcoef
from transformers import BertForSequenceClassification, BertModel

from tests.conftest import tiny_bert_config
from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import compute_metrics
from tinydistill.models import check_vocab, load_classifier
from tinydistill.tasks import Regression, SequenceClassification

SST2 = SequenceClassification("sst-2", ["0", "1"], "accuracy")


def test_permuted_label_map_is_refused(tmp_path, tokenizer):
    cfg = tiny_bert_config(
        tokenizer.vocab_size,
        id2label={0: "not_entailment", 1: "entailment"},
        label2id={"not_entailment": 0, "entailment": 1},
    )
    BertForSequenceClassification(cfg).save_pretrained(tmp_path)
    rte = SequenceClassification("rte", ["entailment", "not_entailment"], "accuracy")
    with pytest.raises(
        TinyDistillError, match="label maps differ: teacher has id2label \\['not_entailment', 'entailment'\\]"
    ):
        load_classifier(str(tmp_path), rte, who="teacher")


def test_backbone_without_head_is_refused_as_teacher_but_fine_as_student(tiny_teacher_dir):
    with pytest.raises(TinyDistillError, match="has no task head .* fine-tune it first"):
        load_classifier(str(tiny_teacher_dir), SST2, who="teacher", require_head=True)
    model = load_classifier(str(tiny_teacher_dir), SST2, who="student")
    assert model.config.id2label == {0: "0", 1: "1"}


def test_vocabulary_mismatch_is_refused(tokenizer, tiny_classifier_dir):
    from transformers import AutoTokenizer

    teacher = BertModel(tiny_bert_config(tokenizer.vocab_size))
    small = BertModel(tiny_bert_config(1000))
    with pytest.raises(TinyDistillError, match=f"teacher embeds {tokenizer.vocab_size} token ids, student 1000"):
        check_vocab(tokenizer, None, teacher, small)
    other = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    other.add_tokens(["zzzunseen"])
    with pytest.raises(TinyDistillError, match="only in student \\['zzzunseen'\\]"):
        check_vocab(tokenizer, other, teacher, teacher)


def test_metrics_match_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    logits, gold = rng.normal(size=(50, 2)), rng.integers(0, 2, 50)
    pred = logits.argmax(-1)
    m = compute_metrics(SequenceClassification("mrpc", ["0", "1"], "f1"), logits, gold)
    assert m["accuracy"] == pytest.approx((pred == gold).mean()) and m["f1"] == pytest.approx(f1_score(gold, pred))
    m = compute_metrics(SequenceClassification("cola", ["0", "1"], "matthews_corrcoef"), logits, gold)
    assert m["matthews_corrcoef"] == pytest.approx(matthews_corrcoef(gold, pred))
    y, p = rng.normal(size=40), rng.normal(size=(40, 1))
    m = compute_metrics(Regression("sts-b", None, "pearson"), p, y)
    assert m["pearson"] == pytest.approx(pearsonr(p[:, 0], y)[0]) and "spearman" in m
