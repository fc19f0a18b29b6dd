"""Loading teachers and checkpoints, and the checks that refuse incompatible teacher/student pairs.

Every model loads in float32 whatever dtype it was saved in (transformers 5 keeps the saved one): the
precision a stage trains or runs the teacher in is the config's business (mixed_precision, teacher_precision).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from tinydistill.errors import TinyDistillError
from tinydistill.model_folders import exists_or_hub
from tinydistill.tasks import Task
from tinydistill.ui import say


def usable_length(requested: int, who: str, config, tokenizer: PreTrainedTokenizerBase | None = None) -> int:
    """``requested`` tokens, or fewer (with a message) where the model has fewer positions."""
    limit = getattr(config, "max_position_embeddings", None)
    if limit and config.model_type in _OFFSET_POSITIONS:  # positions start after the padding index
        limit -= (config.pad_token_id or 0) + 1
    if tokenizer is not None and tokenizer.model_max_length < 1_000_000:
        limit = min(limit or tokenizer.model_max_length, tokenizer.model_max_length)
    if limit and requested > limit:
        say(f"max_length {requested} is more than the {who} takes ({limit} positions): using {limit}")
        return limit
    return requested


_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet", "data2vec-text", "xlm-roberta-xl")


def quietly(fn, *args, **kwargs):
    """Load without the 'newly initialized weights' chatter; errors become one-line messages."""
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return fn(*args, **kwargs)
    except (OSError, ValueError, SafetensorError) as exc:
        raise TinyDistillError(f"could not load {args[0]}: {str(exc).splitlines()[0]}") from None
    except RuntimeError as exc:  # weights that do not fit the config (checked above for the head)
        if "mismatched" not in str(exc) and "size mismatch" not in str(exc):
            raise
        raise TinyDistillError(
            f"could not load {args[0]}: its weights do not fit its config.json (tensor shapes differ)"
        ) from None
    finally:
        hf_logging.set_verbosity(level)


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a model folder or hub id; a local folder's must be able to feed its model."""
    exists_or_hub(name)
    folder = Path(name)
    if folder.is_dir() and (folder / "tokenizer.json").is_file():
        try:
            json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TinyDistillError(f"{folder / 'tokenizer.json'} is damaged: not valid JSON ({exc})") from None
    tokenizer = quietly(AutoTokenizer.from_pretrained, name)
    if folder.is_dir():
        check_tokenizer_covers(folder, tokenizer)
    return tokenizer


def check_tokenizer_covers(folder: Path, tokenizer: PreTrainedTokenizerBase) -> None:
    """Refuse a tokenizer that cannot feed the folder's model: one transformers built from no files (a handful
    of special tokens, every word ``[UNK]``), one far smaller than the model's embedding, or one whose ids run
    past it."""
    rows = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("vocab_size")
    if not isinstance(rows, int) or rows <= 0:
        return
    size, top = len(tokenizer), max(tokenizer.get_vocab().values(), default=-1)
    if size < rows // 2:
        raise TinyDistillError(
            f"{folder} has no usable tokenizer: it knows {size} tokens, the model embeds {rows} "
            "(tokenizer files missing?); copy the tokenizer files the model was trained with (tokenizer.json, "
            "tokenizer_config.json, vocab.txt, ...) into the folder"
        )
    if top >= rows:
        raise TinyDistillError(
            f"{folder}: its tokenizer gives ids up to {top}, but the model embeds only {rows} token ids; "
            "the tokenizer files belong to another model"
        )


def load_masked_lm(name: str) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """A fill-mask model (eval mode) and its tokenizer, from a folder or a hub id."""
    from transformers import AutoModelForMaskedLM

    exists_or_hub(name)
    model = quietly(AutoModelForMaskedLM.from_pretrained, name, dtype=torch.float32)
    tokenizer = load_tokenizer(name)
    if tokenizer.mask_token_id is None:
        raise TinyDistillError(f"{name}: its tokenizer has no mask token; is it a masked-LM model?")
    return model.eval(), tokenizer


def load_classifier(name: str, task: Task, who: str = "model", require_head: bool = False) -> nn.Module:
    """A model with ``task``'s head (``task.auto_model``) from a folder or hub id; a new head when it has none
    (or, with ``require_head``, an error: a teacher must already be fine-tuned on the task)."""
    exists_or_hub(name)
    config = quietly(AutoConfig.from_pretrained, name)
    task.check_head(config, who)
    if require_head and not task.trained_head(config):
        raise TinyDistillError(
            f"{who} {name} has no task head for {task.name} (no label names in its config): "
            "fine-tune it first (`tinydistill finetune`); distilling from an untrained head is noise"
        )
    if not task.trained_head(config) or config.num_labels != task.num_labels:
        for key, value in task.config_kwargs().items():
            setattr(config, key, value)
    return quietly(task.auto_model.from_pretrained, name, config=config, dtype=torch.float32)


def load_backbone(name: str) -> nn.Module:
    """A bare encoder (no task head), e.g. a pre-trained teacher for general distillation."""
    exists_or_hub(name)
    return quietly(AutoModel.from_pretrained, name, dtype=torch.float32)


def check_vocab(
    teacher_tok: PreTrainedTokenizerBase,
    student_tok: PreTrainedTokenizerBase | None,
    teacher_model: nn.Module,
    student_model: nn.Module,
) -> None:
    """Refuse a student whose vocabulary differs from the teacher's (same ids must mean the same tokens)."""
    tv, sv = teacher_model.config.vocab_size, student_model.config.vocab_size
    if tv != sv:
        raise TinyDistillError(
            f"vocabularies differ: teacher embeds {tv} token ids, student {sv}; "
            "build the student with the teacher's tokenizer"
        )
    if student_tok is None:
        return
    a, b = teacher_tok.get_vocab(), student_tok.get_vocab()
    if a != b:
        only_t = sorted(set(a) - set(b))[:3]
        only_s = sorted(set(b) - set(a))[:3]
        moved = [t for t in set(a) & set(b) if a[t] != b[t]][:3]
        raise TinyDistillError(
            f"tokenizer vocabularies differ (teacher {len(a)} entries, student {len(b)}): "
            f"only in teacher {only_t}, only in student {only_s}, different ids {moved}"
        )


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients, for good: ``train()`` on this module becomes a no-op."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.train = lambda _mode=True: model  # nothing the student does can flip the teacher back
    return model


logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
