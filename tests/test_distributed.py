"""Two CPU processes (gloo, torchrun) against one process with the same effective batch."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import distill_args, slice_of

pytestmark = pytest.mark.slow  # subprocesses and whole pipelines

LOAD = """
import sys
from transformers import AutoModelForSequenceClassification

m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1])
print(m.config.num_labels, sum(p.numel() for p in m.parameters()))
"""


def cmd(launcher, teacher, glue, out, batch):
    settings = ["student={every_k_teacher_layers: 2}", *slice_of(192, 51, 24), "report.enabled=false"]
    settings += [f"intermediate.train.batch_size={batch}", "intermediate.train.epochs=1"]
    settings += [
        f"prediction.train.batch_size={batch}",
        "prediction.train.epochs=3",
        "prediction.train.learning_rate=5e-4",
    ]
    args = distill_args(teacher, out, *settings, stage="both", data=glue / "SST-2")
    return [*launcher, "-m", "tinydistill.cli", "--quiet", *args]


def test_two_processes_match_one_process_of_the_same_effective_batch(tmp_path, confident_teacher, glue):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    torchrun = [
        os.path.join(os.path.dirname(sys.executable), "torchrun"),
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
    ]
    one = subprocess.run(
        cmd([sys.executable], confident_teacher, glue, tmp_path / "one", 16),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        cmd(torchrun, confident_teacher, glue, tmp_path / "two", 8),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    m1, m2 = (json.loads((tmp_path / d / "prediction" / "metrics.json").read_text()) for d in ("one", "two"))
    print(
        f"1 process x16: dev {m1['dev']} soft {m1['objective_after']['soft']:.5f}; "
        f"2 processes x8: dev {m2['dev']} soft {m2['objective_after']['soft']:.5f}"
    )
    assert m1["steps"] == m2["steps"] == 36  # 192 rows / 16 per step x 3 epochs: the data was sharded, not repeated
    for m in (m1, m2):  # 51 dev rows, gathered without duplicates or drops: accuracy is a multiple of 1/51
        assert all(abs(e["accuracy"] * 51 - round(e["accuracy"] * 51)) < 1e-6 for e in m["evals"])
    # same effective batch and data order; only dropout masks (per-process RNG) differ
    assert abs(m1["dev"]["accuracy"] - m2["dev"]["accuracy"]) <= 4 / 51
    assert m2["objective_after"]["soft"] == pytest.approx(m1["objective_after"]["soft"], rel=0.1)
    for m in (m1, m2):
        assert m["objective_after"]["soft"] < 0.95 * m["objective_before"]["soft"]
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD, str(tmp_path / "two" / "prediction")], capture_output=True, text=True, timeout=120
    )
    assert loaded.returncode == 0 and loaded.stdout.split()[0] == "2", loaded.stderr[-1500:]
    assert not list((tmp_path / "two").glob(".*"))  # only rank 0 wrote; no temp or checkpoint leftovers
