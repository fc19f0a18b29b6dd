"""TinyBERT data augmentation: ``augment_data`` (a task's training set, written in its own format) and the pieces
it is made of (word slots, word-vector neighbours, masked-LM candidates)."""

from tinydistill.augment.core import (
    AugmentResult,
    augment_data,
    augment_rows,
    augment_texts,
    augmented_data_config,
)
from tinydistill.augment.masked_lm import MaskedLMCandidates
from tinydistill.augment.vectors import WordVectors, load_word_vectors
from tinydistill.augment.words import Slot, find_slots, make_variants

__all__ = [
    "AugmentResult",
    "MaskedLMCandidates",
    "Slot",
    "WordVectors",
    "augment_data",
    "augment_rows",
    "augment_texts",
    "augmented_data_config",
    "find_slots",
    "load_word_vectors",
    "make_variants",
]
