"""TinyBERT data augmentation: the algorithm and its pieces (:mod:`.texts`, :mod:`.words`, :mod:`.vectors`,
:mod:`.masked_lm`, :mod:`.tagged` for tagged sentences), which the task kinds use, and the ``augment`` command
(:mod:`.core`), which sits above them. Nothing is imported here, so a task can import a piece without the command."""
