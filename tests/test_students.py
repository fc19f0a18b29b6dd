"""Student builders: presets, explicit shapes, copied teacher layers, checkpoints."""

import pytest
import torch
from transformers import BertModel

from tests.conftest import tiny_bert_config
from tinydistill.config import StudentConfig
from tinydistill.errors import TinyDistillError
from tinydistill.students import PRESETS, build_student
from tinydistill.tasks import SequenceClassification

TASK = SequenceClassification("sst-2", ["0", "1"], "accuracy")


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return BertModel(tiny_bert_config(500, layers=6, hidden=48, heads=12))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_have_tinybert_shapes_and_teacher_vocab(preset, teacher):
    s = build_student(StudentConfig(preset=preset), teacher, TASK)
    layers, hidden, heads, ffn = PRESETS[preset]
    c = s.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (
        layers,
        hidden,
        heads,
        ffn,
    )
    assert c.vocab_size == 500 and c.model_type == "bert"
    assert c.id2label == {0: "0", 1: "1"}


def test_tinybert_4l_312d_parameter_count(teacher):
    # q, k, v, o + FFN in, out + 2 LayerNorms per layer; embeddings (words, positions, types, LayerNorm); pooler
    s = build_student(StudentConfig(preset="tinybert-4l-312d"), teacher, None)
    per_layer = 4 * (312 * 312 + 312) + (312 * 1200 + 1200) + (1200 * 312 + 312) + 2 * 312 * 2
    emb = (500 + 128 + 2) * 312 + 2 * 312
    pooler = 312 * 312 + 312
    assert sum(p.numel() for p in s.parameters()) == 4 * per_layer + emb + pooler


def test_explicit_shape(teacher):
    s = build_student(StudentConfig(layers=2, hidden=64, heads=4, ffn=128), teacher, None)
    assert (s.config.num_hidden_layers, s.config.hidden_size, s.config.num_attention_heads) == (2, 64, 4)
    assert type(s).__name__ == "BertModel"


def test_from_teacher_layers_copies_weights(teacher):
    s = build_student(StudentConfig(every_k_teacher_layers=2), teacher, TASK)
    assert s.config.num_hidden_layers == 3
    for j, t in enumerate([2, 4, 6]):
        torch.testing.assert_close(
            s.bert.encoder.layer[j].output.dense.weight, teacher.encoder.layer[t - 1].output.dense.weight
        )
    torch.testing.assert_close(s.bert.embeddings.word_embeddings.weight, teacher.embeddings.word_embeddings.weight)
    s2 = build_student(StudentConfig(teacher_layers=[1, 6]), teacher, None)
    torch.testing.assert_close(
        s2.encoder.layer[1].attention.self.key.weight, teacher.encoder.layer[5].attention.self.key.weight
    )


def test_checkpoint_student(tmp_path, teacher):
    build_student(StudentConfig(layers=2, hidden=24, heads=12, ffn=48), teacher, None).save_pretrained(tmp_path)
    s = build_student(StudentConfig(checkpoint=str(tmp_path)), teacher, TASK)
    assert s.config.num_hidden_layers == 2 and s.config.num_labels == 2


@pytest.mark.parametrize(
    "spec,msg",
    [
        (StudentConfig(preset="tiny-9l"), "unknown student preset"),
        (StudentConfig(teacher_layers=[0, 7]), "each must be in 1..6"),
        (StudentConfig(every_k_teacher_layers=9), "exceeds the teacher's 6 layers"),
        (StudentConfig(checkpoint="/nonexistent/student"), "model not found"),
    ],
)
def test_bad_student_specs(spec, msg, teacher):
    with pytest.raises(TinyDistillError, match=msg):
        build_student(spec, teacher, TASK)


def test_student_config_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        StudentConfig(preset="tinybert-4l-312d", checkpoint="x")
    with pytest.raises(ValueError, match="needs all of"):
        StudentConfig(layers=2)
    with pytest.raises(ValueError, match="multiple of heads"):
        StudentConfig(layers=2, hidden=30, heads=4, ffn=8)
