"""Data: task specs, file readers, tokenisation and batching."""

from tinydistill.data.readers import (
    Examples,
    TaskInfo,
    read_corpus,
    read_split,
    task_info,
)
from tinydistill.data.tasks import GLUE_TASKS, glue_task

__all__ = ["Examples", "TaskInfo", "read_corpus", "read_split", "task_info", "GLUE_TASKS", "glue_task"]
