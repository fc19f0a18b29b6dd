"""The keys an encoded row and a batch hold, in one place: the model's inputs, the labels, the teacher's own
tokenization (a teacher of another vocabulary), its cached outputs, the alignment of the two tokenizations, and the
per-word keys of token classification."""

from __future__ import annotations

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # what an encoder reads (where the tokenizer makes it)
LABELS = "labels"
TEACHER_PREFIX = "teacher_"  # the teacher's own tokenization: teacher_input_ids, teacher_attention_mask, ...
CACHED_LOGITS = "cached_logits"  # the teacher's outputs from the teacher-output cache (not a teacher input)
TARGET_ROW = "target_row"  # a row's index into the teacher-target store
ALIGN_KEYS = ("align_positions", "student_words", "teacher_words")  # how the two tokenizations line up
WORD_KEYS = ("word_starts", "word_tags")  # token classification: each word's first piece and gold tag


def is_teacher_input(key: str) -> bool:
    """A key of the teacher's own tokenization (not the alignment)."""
    return key.startswith(TEACHER_PREFIX) and key not in ALIGN_KEYS
