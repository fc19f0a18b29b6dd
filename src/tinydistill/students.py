"""Build students: a preset, an explicit shape, copied teacher layers, or an existing checkpoint.

A built student has the teacher's vocabulary (it uses the teacher's tokenizer) and, unless ``student.family``
names another, the teacher's family; the family adapter says which config keys it keeps and how layers are named.
"""

from __future__ import annotations

import re

from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    PretrainedConfig,
)

from tinydistill.config import StudentConfig
from tinydistill.errors import TinyDistillError
from tinydistill.families import family_of
from tinydistill.families.base import COMMON_KEEP
from tinydistill.models import load_backbone, load_classifier
from tinydistill.tasks import Task

#: TinyBERT's published shapes (layers, hidden, heads, ffn).
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tinybert-4l-312d": (4, 312, 12, 1200),
    "tinybert-6l-768d": (6, 768, 12, 3072),
}


def _model_type(name: str) -> str:
    """``name`` as transformers knows it (a model type, e.g. bert, deberta-v2, modernbert), or one line saying so."""
    from transformers import CONFIG_MAPPING

    if name not in CONFIG_MAPPING:
        close = [t for t in CONFIG_MAPPING if name.replace("_", "-") in t][:5]
        raise TinyDistillError(
            f"student.family {name!r} is not a model type transformers knows"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
        )
    return name


def student_config(
    teacher_config: PretrainedConfig,
    layers: int,
    hidden: int,
    heads: int,
    ffn: int,
    task: Task | None = None,
    family: str | None = None,
) -> PretrainedConfig:
    """A config of ``family`` (default: the teacher's) with the teacher's vocabulary and positions, at a new shape.

    The student keeps the teacher's settings its adapter lists (ELECTRA ``embedding_size``, DeBERTa's relative
    attention, ModernBERT's local/global pattern, ...) when both are one family, and the vocabulary settings always.
    """
    if hidden % heads:
        raise TinyDistillError(
            f"student hidden size {hidden} is not a multiple of its {heads} heads: pick heads that divide {hidden}"
        )
    model_type = _model_type(family or teacher_config.model_type)
    adapter = family_of(AutoConfig.for_model(model_type))
    same = model_type == teacher_config.model_type
    names = adapter.keep if (adapter and same) else COMMON_KEEP
    keep = {k: getattr(teacher_config, k) for k in names if hasattr(teacher_config, k)}
    shape = (
        adapter.shape if adapter else ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
    )
    extra = task.config_kwargs() if task is not None else {}
    try:
        return AutoConfig.for_model(model_type, **dict(zip(shape, (layers, hidden, heads, ffn))), **keep, **extra)
    except (ValueError, TypeError) as exc:
        raise TinyDistillError(
            f"cannot build a {model_type} student of {layers} x {hidden} ({heads} heads, FFN "
            f"{ffn}): {str(exc).splitlines()[0]}"
        ) from None


def _instantiate(config: PretrainedConfig, task: Task | None) -> nn.Module:
    cls = task.auto_model if task is not None else AutoModel
    return cls.from_config(config)


def copy_teacher_layers(teacher: nn.Module, layer_ids: list[int], task: Task | None) -> nn.Module:
    """DistilBERT-style student: the teacher's embeddings and the chosen layers (1-based), same width."""
    n = teacher.config.num_hidden_layers
    bad = [i for i in layer_ids if not 1 <= i <= n]
    if bad or not layer_ids:
        raise TinyDistillError(f"teacher_layers {layer_ids}: each must be in 1..{n} (the teacher has {n} layers)")
    tc = teacher.config
    adapter = family_of(tc)
    if adapter is None or adapter.layer_key is None:
        raise TinyDistillError(
            f"cannot copy single layers of a {tc.model_type} teacher "
            + ("(its layers share one set of weights)" if adapter else "(no family adapter)")
            + ": build the student by shape or preset instead"
        )
    layer_key = re.compile(adapter.layer_key)
    ffn = getattr(tc, adapter.shape[3])
    config = student_config(tc, len(layer_ids), tc.hidden_size, tc.num_attention_heads, ffn, task)
    student = _instantiate(config, task)
    src = {old - 1: new for new, old in enumerate(layer_ids)}  # teacher 0-based index -> student index
    teacher_base = teacher.base_model.state_dict()
    renamed = {}
    for key, value in teacher_base.items():
        m = layer_key.search(key)
        if m is None:
            renamed[key] = value
        elif int(m.group(2)) in src:
            head, old = m.group(0), m.group(2)
            renamed[key.replace(head, head.replace(f".{old}.", f".{src[int(old)]}."), 1)] = value
    missing, unexpected = student.base_model.load_state_dict(renamed, strict=False)
    # a pooler on one side only is expected: token-classification models are built without one
    if [k for k in unexpected if "pooler" not in k] or [k for k in missing if "pooler" not in k]:
        raise TinyDistillError(f"could not copy teacher layers: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return student


def build_student(spec: StudentConfig, teacher: nn.Module, task: Task | None) -> nn.Module:
    """The student described by ``spec``: with a classification head for ``task``, or a bare encoder
    (``task=None``, general distillation)."""
    if spec.checkpoint:
        return load_classifier(spec.checkpoint, task, who="student") if task else load_backbone(spec.checkpoint)
    if spec.preset:
        if spec.preset not in PRESETS:
            raise TinyDistillError(f"unknown student preset {spec.preset!r}: use one of {', '.join(PRESETS)}")
        return _instantiate(student_config(teacher.config, *PRESETS[spec.preset], task, spec.family), task)
    if spec.layers:
        return _instantiate(
            student_config(teacher.config, spec.layers, spec.hidden, spec.heads, spec.ffn, task, spec.family), task
        )
    n = teacher.config.num_hidden_layers
    if spec.every_k_teacher_layers:
        k = spec.every_k_teacher_layers
        if k > n:
            raise TinyDistillError(f"every_k_teacher_layers={k} exceeds the teacher's {n} layers")
        return copy_teacher_layers(teacher, list(range(k, n + 1, k)), task)
    return copy_teacher_layers(teacher, list(spec.teacher_layers), task)
