"""Token classification (NER): column and JSONL files, IOB1 -> IOB2, piece alignment, per-token losses, the seqeval
metric, the teacher-logit cache, augmentation of O words, a tiny end-to-end pipeline and transformers' pipeline()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForTokenClassification, BertConfig, BertForTokenClassification

from tests.conftest import GLUE, tiny_bert_config
from tinydistill.config import DataConfig, LossConfig, load_config
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import TokenClassification, task_info
from tinydistill.tasks.tokens import IGNORE, encode_words

NER = GLUE.parent / "ner"
CONLL_IOB1 = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
lamb NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Smith NNP I-NP B-PER

"""
WNUT_IOB2 = "Going\tO\nto\tO\nNew\tB-location\nYork\tI-location\n\nhi\tO\n"


def _data(tmp_path: Path, train: str, dev: str | None = None, suffix: str = ".txt", **kw) -> DataConfig:
    (tmp_path / f"train{suffix}").write_text(train, encoding="utf-8")
    (tmp_path / f"dev{suffix}").write_text(dev if dev is not None else train, encoding="utf-8")
    return DataConfig(task="ner", dir=str(tmp_path), **kw)


def test_iob1_column_file_reads_as_iob2_with_docstart_skipped(tmp_path, capsys):
    cfg = _data(tmp_path, CONLL_IOB1)
    task = task_info(cfg)
    assert task.label_names == ["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    ex = read_split(cfg, "train", task)
    assert ex.words == [["EU", "rejects", "German", "lamb", "."], ["Peter", "Blackburn", "Smith"]]
    names = [[task.label_names[i] for i in s] for s in ex.labels]
    # IOB1: I-ORG opens an entity -> B-ORG; B-PER after I-PER is a second, adjacent entity and stays B-PER
    assert names == [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER", "B-PER"]]
    assert "tags in IOB1, converted to IOB2" in capsys.readouterr().out


def test_two_column_tab_file_in_iob2_and_jsonl(tmp_path):
    cfg = _data(tmp_path, WNUT_IOB2)
    task = task_info(cfg)
    assert task.label_names == ["O", "B-location", "I-location"]
    ex = read_split(cfg, "train", task)
    assert [[task.label_names[i] for i in s] for s in ex.labels] == [["O", "O", "B-location", "I-location"], ["O"]]
    rows = [{"tokens": ["Going", "to", "New", "York"], "tags": ["O", "O", "B-location", "I-location"]}]
    lines = "\n".join(json.dumps(r) for r in rows)
    (tmp_path / "j").mkdir()
    jcfg = _data(tmp_path / "j", lines, suffix=".jsonl")
    ej = read_split(jcfg, "train", task_info(jcfg))
    assert ej.words == [rows[0]["tokens"]] and ej.labels == [ex.labels[0]]


def test_the_real_ner_files_read_as_they_are():
    from seqeval.metrics.sequence_labeling import get_entities

    conll = DataConfig(task="ner", dir=str(NER / "conll2003"))
    task = task_info(conll)
    assert task.label_names == ["O", *[f"{p}-{t}" for t in ("LOC", "MISC", "ORG", "PER") for p in "BI"]]
    dev = read_split(conll, "dev", task)
    assert len(dev) == 3250 and sum(len(w) for w in dev.words) == 51362  # the published counts
    ents = get_entities([[task.label_names[i] for i in s] for s in dev.labels])
    counts = {t: sum(e[0] == t for e in ents) for t in ("LOC", "MISC", "ORG", "PER")}
    assert counts == {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}  # the published figures
    wnut = DataConfig(task="ner", dir=str(NER / "wnut17"))
    wtask = task_info(wnut)
    assert len(wtask.label_names) == 13 and "B-creative-work" in wtask.label_names
    assert len(read_split(wnut, "dev", wtask)) == 1009


@pytest.mark.parametrize(
    ("train", "dev", "kw", "message"),
    [
        ("a NN O\nb NN\n", None, {}, r"train.txt:2: 2 fields, but the file's lines have 3"),
        ("a O\nb B-PER\n", "a O\nb B-FOO\n", {}, r"dev.txt:1: tag 'B-FOO' .* is not in the label set"),
        (
            "a O\nb B-PER\n\nc O\nd I-PER\n",
            None,
            {"tag_scheme": "iob2"},
            r"train.txt:5: 'I-PER' follows 'O' in an IOB2",
        ),
        ("a\nb\n", None, {}, r"train.txt:1: one field per line, so the file has no tag column"),
        ("a O\nb X-PER\n", None, {}, r"train.txt:2: tag 'X-PER' is not O, B-<type> or I-<type>"),
    ],
)
def test_bad_token_files_say_what_and_where(tmp_path, train, dev, kw, message):
    cfg = _data(tmp_path, train, dev, **kw)
    with pytest.raises(TinyDistillError, match=message):
        read_split(cfg, "dev", task_info(cfg))


def test_empty_sentence_and_ragged_tags_in_jsonl(tmp_path):
    cfg = _data(tmp_path, '{"tokens": [], "tags": []}\n', suffix=".jsonl")
    with pytest.raises(TinyDistillError, match=r"train.jsonl:1: an empty sentence"):
        task_info(cfg)
    cfg = _data(tmp_path, '{"tokens": ["a", "b"], "tags": ["O"]}\n', suffix=".jsonl")
    with pytest.raises(TinyDistillError, match=r"row 1 has 2 tokens but 1 tags"):
        task_info(cfg)


def test_first_piece_carries_the_tag_and_truncated_words_are_scored_as_missed(tokenizer):
    task = TokenClassification("ner", ["O", "B-PER", "I-PER"])
    from tinydistill.data.readers import Examples

    words = [["Peter", "Blackburnshire", "spoke"]]
    ex = Examples([" ".join(words[0])], None, [[1, 2, 0]], "x", words)
    pieces = tokenizer.tokenize("Blackburnshire")
    assert len(pieces) > 1  # a multi-piece word
    row = encode_words(ex, tokenizer, 64).rows[0]
    assert row["labels"] == [IGNORE, 1, 2] + [IGNORE] * (len(pieces) - 1) + [0, IGNORE]
    assert row["word_starts"] == [1, 2, 2 + len(pieces)]
    every = encode_words(ex, tokenizer, 64, label_all_pieces=True, labels=task.label_names).rows[0]
    assert every["labels"] == [IGNORE, 1, 2] + [2] * (len(pieces) - 1) + [0, IGNORE]
    # B-PER continuation pieces become I-PER
    ex_b = Examples(["Blackburnshire"], None, [[1]], "x", [["Blackburnshire"]])
    assert encode_words(ex_b, tokenizer, 64, True, task.label_names).rows[0]["labels"][2:-1] == [2] * (len(pieces) - 1)
    # max_length 4: [CLS] Peter Black... [SEP]: "spoke" is cut off; its gold tag stays in the evaluation
    cut = encode_words(ex, tokenizer, 4)
    loader = task.loader(cut, tokenizer, 8)
    batch = next(iter(loader))
    assert batch["word_starts"].tolist() == [[1, 2, -1]]
    perfect = torch.zeros(1, 4, 3)
    perfect[0, 1, 1] = perfect[0, 2, 2] = 9.0  # right on every word the model sees
    out, gold = task.collect(perfect, batch)
    assert out[0].tolist() == [1, 2, 0] and gold[0].tolist() == [1, 2, 0]
    ex2 = Examples(["a Peter"], None, [[0, 1]], "x", [["a", "Peter"]])
    cut2 = next(iter(task.loader(encode_words(ex2, tokenizer, 3), tokenizer, 8)))  # [CLS] a [SEP]
    out2, gold2 = task.collect(torch.zeros(1, 3, 3), cut2)
    assert task.metrics(out2, gold2)["recall"] == 0.0  # the cut-off entity counts as missed
    # a word the tokenizer makes no piece of keeps its place (scored as O), the words after it keep theirs
    ex3 = Examples(["a \u200b Peter"], None, [[0, 0, 1]], "x", [["a", "\u200b", "Peter"]])
    assert encode_words(ex3, tokenizer, 16).rows[0]["word_starts"] == [1, -1, 2]


def test_per_token_losses_count_labelled_real_tokens_only():
    task = TokenClassification("ner", ["O", "B-X", "I-X"])
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 0], [IGNORE, 2, IGNORE, IGNORE]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    kept = [(0, 1), (0, 3), (1, 1)]
    hard = sum(-F.log_softmax(s[i, j], -1)[labels[i, j]] for i, j in kept) / 3
    assert torch.allclose(task.hard_loss(s, labels), hard)
    T = 2.0
    soft = sum(-(F.softmax(t[i, j] / T, -1) * F.log_softmax(s[i, j] / T, -1)).sum() for i, j in kept) / 3 * T * T
    cfg = LossConfig(soft_weight=1.0, temperature=T)
    assert torch.allclose(task.soft_loss(cfg, s, t, labels, mask), soft)
    real = [(i, j) for i in range(2) for j in range(4) if mask[i, j]]
    every = sum(-(F.softmax(t[i, j] / T, -1) * F.log_softmax(s[i, j] / T, -1)).sum() for i, j in real) / 7 * T * T
    cfg_all = LossConfig(soft_weight=1.0, temperature=T, soft_tokens="all")
    assert torch.allclose(task.soft_loss(cfg_all, s, t, labels, mask), every)
    s2 = s.clone()
    s2[labels == IGNORE] = 100.0  # what the student says at ignored positions changes nothing
    assert torch.allclose(task.soft_loss(cfg, s2, t, labels, mask), soft)


def test_seqeval_metric_on_a_known_case():
    task = TokenClassification("ner", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    gold = [np.array([1, 2, 0, 3]), np.array([0, 3, 4])]  # PER(0-1), LOC(3) | LOC(1-2)
    pred = [np.array([1, 2, 0, 0]), np.array([0, 3, 0])]  # PER right, LOC missed | LOC cut short (wrong)
    m = task.metrics(pred, gold)
    assert m["precision"] == pytest.approx(1 / 2) and m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert m["f1_PER"] == 1.0 and m["f1_LOC"] == 0.0
    assert m["token_accuracy"] == pytest.approx(5 / 7)


def _ner_teacher(path: Path, tokenizer, labels: list[str]) -> Path:
    torch.manual_seed(3)
    cfg = tiny_bert_config(
        tokenizer.vocab_size, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
    )
    BertForTokenClassification(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_cache_holds_ragged_per_token_logits_exactly(tmp_path, tokenizer):
    from tinydistill.cache import teacher_logits

    cfg = DataConfig(task="ner", dir=str(NER / "wnut17"), max_train_examples=40)
    task = task_info(cfg)
    model = AutoModelForTokenClassification.from_pretrained(_ner_teacher(tmp_path / "t", tokenizer, task.label_names))
    data = task.encode(read_split(cfg, "train", task), tokenizer, 64)
    first = teacher_logits(model.eval(), data, tokenizer, 16, tmp_path / "cache", per_token=task.per_token_outputs)
    again = teacher_logits(model, data, tokenizer, 16, tmp_path / "cache", per_token=True)
    assert [len(x) for x in first] == [len(r["input_ids"]) for r in data.rows]
    with torch.no_grad():
        direct = model(**{k: torch.tensor([data.rows[5][k]]) for k in ("input_ids", "attention_mask")}).logits[0]
    assert np.allclose(first[5], direct.numpy(), atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # read back bit for bit
    entry = next((tmp_path / "cache" / "teacher-logits").glob("*.json"))
    assert json.loads(entry.read_text())["lengths"] == [len(r["input_ids"]) for r in data.rows]


def test_augmentation_replaces_only_words_tagged_o(tmp_path):
    from tinydistill.augment.tagged import augment_sentences
    from tinydistill.augment.vectors import WordVectors
    from tinydistill.config import AugmentConfig
    from tinydistill.tasks.tokens import read_tagged

    words = ["rejects", "refuses", "lamb", "beef", "german", "french", "peter", "paul", "blackburn", "smith"]
    vectors = WordVectors(words, np.random.default_rng(0).normal(size=(len(words), 8)))
    cfg = _data(tmp_path, CONLL_IOB1)
    data = read_tagged(cfg, "train")
    out = augment_sentences(data, AugmentConfig(copies=10, probability=1.0, candidates=3), 0, vectors)
    first = out[0]
    assert len(first) > 1 and first[0] == data.words[0]
    for copy in first[1:]:
        assert len(copy) == len(data.words[0])
        assert [c for c, t in zip(copy, data.tags[0]) if t != "O"] == ["EU", "German"]  # entities untouched
        assert copy[1] != "rejects" or copy[3] != "lamb"
    assert out[1] == [data.words[1]]  # every word is an entity: no copy


def _ner_config(tmp_path: Path, teacher: Path, data_dir: Path, **extra):
    sets = [
        f"output_dir={tmp_path / 'run'}",
        f"teacher={teacher}",
        "data.task=ner",
        f"data.dir={data_dir}",
        "data.max_train_examples=64",
        "data.max_eval_examples=32",
        "data.max_length=32",
        "student={layers: 2, hidden: 16, heads: 4, ffn: 32}",
        "report.speed_examples=16",
    ]
    for stage in ("general", "finetune", "intermediate", "prediction"):
        sets += [f"{stage}.train.epochs=2", f"{stage}.train.batch_size=16", f"{stage}.train.learning_rate=3e-3"]
    return load_config(None, sets + [f"{k}={v}" for k, v in extra.items()])


@pytest.mark.slow
def test_tiny_token_pipeline_end_to_end_and_transformers_pipeline_load(tmp_path, tiny_teacher_dir):
    from transformers import AutoTokenizer, pipeline

    from tinydistill.export import export
    from tinydistill.pipeline import pipeline as run_pipeline

    cfg = _ner_config(tmp_path, tiny_teacher_dir, NER / "wnut17")
    summary = run_pipeline(cfg, log=lambda _: None)
    task = task_info(cfg.data)
    run = tmp_path / "run"
    assert summary["metric"] == "f1"
    for stage in ("2-teacher", "3-intermediate", "4-prediction"):
        model = AutoModelForTokenClassification.from_pretrained(run / stage)
        assert [model.config.id2label[i] for i in range(task.num_labels)] == task.label_names
    metrics = json.loads((run / "4-prediction" / "metrics.json").read_text())
    assert metrics["objective_after"]["total"] < metrics["objective_before"]["total"]
    assert {"f1", "precision", "recall", "token_accuracy", "f1_person"} <= set(metrics["dev"])

    student = AutoModelForTokenClassification.from_pretrained(run / "4-prediction")
    with torch.no_grad():  # make it say B-person / I-person everywhere, so aggregation has something to group
        student.classifier.bias.zero_()
        student.classifier.weight.zero_()
        student.classifier.bias[task.label_names.index("B-person")] = 5.0
    ner = pipeline(
        "token-classification",
        model=student,
        tokenizer=AutoTokenizer.from_pretrained(run / "4-prediction"),
        aggregation_strategy="simple",
    )
    groups = ner("Peter went home")
    assert groups and {g["entity_group"] for g in groups} == {"person"}

    from tinydistill.bench import bench
    from tinydistill.compare import compare

    rows = compare([run], tmp_path / "compare", cfg=cfg)
    assert [r.metric for r in rows] == ["f1", "f1"] and rows[1].score == pytest.approx(metrics["dev"]["f1"])
    b = bench(run / "2-teacher", run / "4-prediction", tmp_path / "bench", cfg=cfg, examples=16, runtimes=("pytorch",))
    assert b["metric"] == "f1" and all(r["score"] is not None for r in b["rows"]) and b["flop_ratio"] > 1

    result = export(run / "4-prediction", tmp_path / "onnx", cfg=cfg, quantize=False)
    assert result["max_abs_logit_diff"] < 1e-4 and result["metric"] == "f1"
    assert result["pipeline_tag"] == "token-classification"
    assert result["scores"]["onnx"] == pytest.approx(result["scores"]["pytorch"], abs=1e-6)


def test_token_task_refuses_a_teacher_of_another_tokenizer(tokenizer):
    from tinydistill.data.readers import Examples

    task = TokenClassification("ner", ["O", "B-X", "I-X"])
    ex = Examples(["a b"], None, [[0, 1]], "x", [["a", "b"]])
    with pytest.raises(TinyDistillError, match="share one tokenizer"):
        task.encode(ex, tokenizer, 16, teacher_tokenizer=tokenizer)


def test_bad_tags_exit_nonzero_and_leave_no_output(tmp_path, tiny_teacher_dir, monkeypatch, capsys):
    from tests.helpers import run_cli

    (tmp_path / "d").mkdir()
    _data(tmp_path / "d", "a O\nb B-PER\n", "a O\nb B-FOO\n")
    out = tmp_path / "teacher"
    args = ["finetune", "--teacher", str(tiny_teacher_dir), "--task", "ner", "--data-dir", str(tmp_path / "d")]
    code, stdout, stderr = run_cli(monkeypatch, capsys, *args, "--output", str(out))
    assert code != 0 and "dev.txt:1: tag 'B-FOO'" in stdout + stderr
    assert not out.exists()


@pytest.mark.slow
def test_label_all_pieces_only_changes_training_rows(tmp_path, tokenizer):
    cfg = DataConfig(task="ner", dir=str(NER / "conll2003"), max_train_examples=20, label_all_pieces=True)
    task = task_info(cfg)
    ex = read_split(cfg, "train", task)
    train = task.encode(ex, tokenizer, 64, training=True)
    dev = task.encode(ex, tokenizer, 64)
    more = sum(sum(x != IGNORE for x in r["labels"]) for r in train.rows)
    first = sum(sum(x != IGNORE for x in r["labels"]) for r in dev.rows)
    assert more > first == sum(len(w) for w in ex.words)
    assert [r["word_tags"] for r in train.rows] == [r["word_tags"] for r in dev.rows]


def test_a_bert_config_is_a_token_model_when_its_architecture_says_so():
    from tinydistill.tasks import task_of_model

    assert task_of_model(BertConfig(architectures=["BertForTokenClassification"])) is TokenClassification


def test_a_token_student_copies_layers_of_a_backbone_with_a_pooler(tiny_teacher_dir):
    from tinydistill.config import StudentConfig
    from tinydistill.models import load_backbone
    from tinydistill.students import build_student

    teacher = load_backbone(str(tiny_teacher_dir))
    student = build_student(StudentConfig(every_k_teacher_layers=2), teacher, TokenClassification("n", ["O", "B-X"]))
    assert isinstance(student, BertForTokenClassification) and student.config.num_hidden_layers == 2
    assert torch.equal(student.bert.encoder.layer[1].output.dense.weight, teacher.encoder.layer[3].output.dense.weight)


def test_a_datasets_token_dataset_with_class_label_tags(tmp_path):
    import datasets

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"])),
        }
    )
    rows = {"tokens": [["Peter", "Smith", "spoke"], ["hi"]], "ner_tags": [[1, 2, 0], [0]]}
    (tmp_path / "hub").mkdir()
    for split in ("train", "validation"):  # a local folder the way the hub lays one out
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "hub" / f"{split}.parquet"))
    cfg = DataConfig(task="ner", hf_dataset=str(tmp_path / "hub"), tags_column="ner_tags")
    task = task_info(cfg)
    assert task.label_names == ["O", "B-PER", "I-PER"]
    dev = read_split(cfg, "dev", task)
    assert dev.words == rows["tokens"] and dev.labels == rows["ner_tags"]


def test_augment_command_writes_tagged_copies_in_the_input_format(tmp_path):
    from tinydistill.augment.core import augment_data
    from tinydistill.config import Config

    rng = np.random.default_rng(0)
    words = ["rejects", "refuses", "denies", "lamb", "beef", "pork", "call", "plea", "german", "peter", "smith"]
    glove = tmp_path / "glove.txt"
    glove.write_text("".join(f"{w} " + " ".join(f"{x:.3f}" for x in rng.normal(size=8)) + "\n" for w in words))
    (tmp_path / "data").mkdir()
    data = _data(tmp_path / "data", CONLL_IOB1)
    cfg = Config(data=data).model_copy(
        update={"augment": Config().augment.model_copy(update={"word_vectors": str(glove), "probability": 1.0})}
    )
    result = augment_data(cfg, tmp_path / "aug")
    out = tmp_path / "aug"
    assert (out / "dev.txt").exists() and result.metrics["entity_words_changed"] == 0
    assert result.metrics["examples_out"] > result.metrics["examples_in"] == 2
    task = task_info(result.data)
    ex = read_split(result.data, "train", task)
    original = read_split(data, "train", task)
    assert ex.words[0] == original.words[0] and len(ex) == result.metrics["examples_out"]
    copies = [(w, t) for w, t in zip(ex.words, ex.labels) if len(w) == 5]
    assert len(copies) > 1 and all(t == original.labels[0] for _, t in copies)  # tags aligned word for word
    assert all(w[0] == "EU" and w[2] == "German" for w, _ in copies)
    first_line = (out / "train.txt").read_text().splitlines()[0]
    assert first_line.split(" ")[1:] == ["NNP", "I-NP", "I-ORG"]  # every other column copied as read


@pytest.mark.slow
def test_a_transfer_set_of_untagged_sentences_is_tagged_by_the_teacher(tmp_path, tokenizer):
    from tinydistill.data.readers import concat
    from tinydistill.stages import distill

    data = DataConfig(task="ner", dir=str(NER / "wnut17"), max_train_examples=16, label_all_pieces=True)
    task = task_info(data)
    teacher = _ner_teacher(tmp_path / "t", tokenizer, task.label_names)
    sentences = [f"Peter Blackburn{'s' * (i % 3)} went to New York on day {i}" for i in range(48)]
    (tmp_path / "more.txt").write_text("\n".join(sentences) + "\n\n", encoding="utf-8")
    (tmp_path / "more.jsonl").write_text('{"tokens": ["Paris", "again"]}\n', encoding="utf-8")
    more = task.read_transfer(data, tmp_path / "more.txt")
    assert more.words[1] == ["Peter", "Blackburns", "went", "to", "New", "York", "on", "day", "1"]
    assert more.labels[1] == [IGNORE] * 9 and task.read_transfer(data, tmp_path / "more.jsonl").words == [
        ["Paris", "again"]
    ]
    both = concat(read_split(data, "train", task), more)
    assert both.source == f"{NER / 'wnut17' / 'train.txt'} + {tmp_path / 'more.txt'}"  # messages name both files
    mixed = task.encode(both, tokenizer, 32, training=True)
    assert len(mixed) == 64 and all(set(r["labels"]) == {IGNORE} for r in mixed.rows[16:])  # even every piece
    assert any(set(r["labels"]) != {IGNORE} for r in mixed.rows[:16])
    assert task.hard_loss(torch.randn(2, 5, task.num_labels), torch.full((2, 5), IGNORE)) == 0.0
    with pytest.raises(TinyDistillError, match=r"\.txt \(one sentence per line\) or JSONL"):
        task.read_transfer(data, tmp_path / "more.csv")

    sets = [
        f"teacher={teacher}",
        "data.task=ner",
        f"data.dir={NER / 'wnut17'}",
        "data.max_train_examples=16",
        "data.max_eval_examples=16",
        "data.max_length=32",
        "student={layers: 1, hidden: 16, heads: 4, ffn: 32}",
        "prediction.train.epochs=1",
        "prediction.train.batch_size=16",
        "prediction.losses.hard_weight=1.0",
        "report.enabled=false",
        f"data.transfer_files=['{tmp_path / 'more.txt'}']",
    ]
    from tinydistill.preflight import check_inputs

    with pytest.raises(TinyDistillError, match="set soft_tokens: all"):  # a pipeline: before its first stage
        check_inputs(load_config(None, sets), ("finetune", "intermediate", "prediction"))
    with pytest.raises(TinyDistillError, match="set soft_tokens: all"):
        distill(load_config(None, sets), "prediction", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    out = distill(load_config(None, [*sets, "prediction.losses.soft_tokens=all"]), "prediction", tmp_path / "out")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4  # 16 tagged sentences + 48 untagged ones, 16 a batch
    assert metrics["history"] and all(h["hard"] == h["hard"] and h["soft"] > 0 for h in metrics["history"])
