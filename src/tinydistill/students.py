"""Build students: a preset, an explicit shape, copied teacher layers, or an existing checkpoint.

Every student has the teacher's architecture family and vocabulary (it uses the teacher's tokenizer).
"""
from __future__ import annotations

import re

from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PretrainedConfig,
)

from tinydistill.config import StudentConfig
from tinydistill.data.readers import TaskInfo
from tinydistill.errors import TinyDistillError
from tinydistill.models import label_kwargs, load_backbone, load_classifier

#: TinyBERT's published shapes (layers, hidden, heads, ffn).
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tinybert-4l-312d": (4, 312, 12, 1200),
    "tinybert-6l-768d": (6, 768, 12, 3072),
}

_LAYER_KEY = re.compile(r"(^|\.)layer\.(\d+)\.")


def student_config(teacher_config: PretrainedConfig, layers: int, hidden: int, heads: int, ffn: int,
                   task: TaskInfo | None = None) -> PretrainedConfig:
    """A config of the teacher's family, with the teacher's vocabulary and positions, at a new shape."""
    if hidden % heads:
        raise TinyDistillError(f"student hidden size {hidden} is not a multiple of its {heads} heads")
    keep = {k: getattr(teacher_config, k) for k in (
        "vocab_size", "max_position_embeddings", "type_vocab_size", "pad_token_id", "layer_norm_eps",
        "hidden_act", "relative_attention_num_buckets", "bos_token_id", "eos_token_id") if hasattr(teacher_config, k)}
    extra = label_kwargs(task) if task is not None else {}
    return AutoConfig.for_model(teacher_config.model_type, num_hidden_layers=layers, hidden_size=hidden,
                                num_attention_heads=heads, intermediate_size=ffn, **keep, **extra)


def _instantiate(config: PretrainedConfig, task: TaskInfo | None) -> nn.Module:
    cls = AutoModelForSequenceClassification if task is not None else AutoModel
    return cls.from_config(config)


def copy_teacher_layers(teacher: nn.Module, layer_ids: list[int], task: TaskInfo | None) -> nn.Module:
    """DistilBERT-style student: the teacher's embeddings and the chosen layers (1-based), same width."""
    n = teacher.config.num_hidden_layers
    bad = [i for i in layer_ids if not 1 <= i <= n]
    if bad or not layer_ids:
        raise TinyDistillError(f"teacher_layers {layer_ids}: each must be in 1..{n} (the teacher has {n} layers)")
    tc = teacher.config
    config = student_config(tc, len(layer_ids), tc.hidden_size, tc.num_attention_heads, tc.intermediate_size, task)
    student = _instantiate(config, task)
    src = {old - 1: new for new, old in enumerate(layer_ids)}  # teacher 0-based index -> student index
    teacher_base = teacher.base_model.state_dict()
    renamed = {}
    for key, value in teacher_base.items():
        m = _LAYER_KEY.search(key)
        if m is None:
            renamed[key] = value
        elif int(m.group(2)) in src:
            renamed[_LAYER_KEY.sub(lambda mm: f"{mm.group(1)}layer.{src[int(m.group(2))]}.", key, count=1)] = value
    missing, unexpected = student.base_model.load_state_dict(renamed, strict=False)
    if unexpected or [k for k in missing if "pooler" not in k]:
        raise TinyDistillError(f"could not copy teacher layers: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return student


def build_student(spec: StudentConfig, teacher: nn.Module, task: TaskInfo | None) -> nn.Module:
    """The student described by ``spec``: with a classification head for ``task``, or a bare encoder
    (``task=None``, general distillation)."""
    if spec.checkpoint:
        return load_classifier(spec.checkpoint, task, who="student") if task else load_backbone(spec.checkpoint)
    if spec.preset:
        if spec.preset not in PRESETS:
            raise TinyDistillError(f"unknown student preset {spec.preset!r}: use one of {', '.join(PRESETS)}")
        return _instantiate(student_config(teacher.config, *PRESETS[spec.preset], task), task)
    if spec.layers:
        return _instantiate(student_config(teacher.config, spec.layers, spec.hidden, spec.heads, spec.ffn, task), task)
    n = teacher.config.num_hidden_layers
    if spec.every_k_teacher_layers:
        k = spec.every_k_teacher_layers
        if k > n:
            raise TinyDistillError(f"every_k_teacher_layers={k} exceeds the teacher's {n} layers")
        return copy_teacher_layers(teacher, list(range(k, n + 1, k)), task)
    return copy_teacher_layers(teacher, list(spec.teacher_layers), task)
