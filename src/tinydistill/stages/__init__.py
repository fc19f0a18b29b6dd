"""The recipe's stages, each one plan run by one template (:mod:`.template`):

- :func:`finetune`  (stage 2): the teacher learns the task (hard labels).
- :func:`general`   (stage 1): a pre-trained teacher's embeddings, hidden states and attention scores
  into a new student, on unlabelled text.
- :func:`distill`   (stages 3 and 4): task distillation, ``intermediate`` (embedding + hidden +
  attention losses), ``prediction`` (soft targets, optional hard labels), or ``both`` in sequence.

Each writes a model folder that loads with plain ``transformers``, plus ``metrics.json`` and the
resolved config; the folder appears only once complete.
"""

from tinydistill.stages.finetuning import finetune
from tinydistill.stages.general_distillation import general
from tinydistill.stages.task_distillation import distill

__all__ = ["distill", "finetune", "general"]
