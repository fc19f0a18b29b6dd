"""Data: task specs, file readers, tokenisation and batching."""

from tinydistill.data.readers import Examples, read_corpus, read_split
from tinydistill.data.tasks import GLUE_TASKS, glue_task

__all__ = ["Examples", "read_corpus", "read_split", "GLUE_TASKS", "glue_task"]
