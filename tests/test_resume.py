"""Crash and resume: kill -9 in the middle of a stage, resume, and the student equals an uninterrupted run's.

On CPU with the same thread count the result is identical to the bit (no tolerance): weights, optimizer,
scheduler, RNG states (dropout is on) and the data position all come back from the checkpoint.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import distill_args, slice_of
from tinydistill.checkpoints import checkpoint_root, latest

pytestmark = pytest.mark.slow  # subprocesses and whole pipelines


def distill_cmd(teacher, glue, out, *extra):
    settings = ["student={layers: 2, hidden: 32, heads: 4, ffn: 64}", *slice_of(96, 32, 24)]
    settings += ["prediction.train.batch_size=8", "prediction.train.epochs=25", "prediction.train.learning_rate=1e-3"]
    settings += ["prediction.train.checkpoint_every=20", "prediction.losses.hard_weight=0.5", "report.enabled=false"]
    args = distill_args(teacher, out, *settings, data=glue / "SST-2")
    return [sys.executable, "-m", "tinydistill.cli", "--quiet", *args, *extra]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def test_kill_9_then_resume_gives_the_uninterrupted_student(tmp_path, tiny_classifier_dir, glue):
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    res = subprocess.run(
        distill_cmd(tiny_classifier_dir, glue, whole), env=_env(), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    total = json.loads((whole / "metrics.json").read_text())["steps"]
    assert total == 300  # 96 rows / batch 8 = 12 steps per epoch, 25 epochs

    proc = subprocess.Popen(
        distill_cmd(tiny_classifier_dir, glue, crashed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    root = checkpoint_root(crashed)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        ckpt = latest(root)
        if ckpt is not None and int(ckpt.name.split("-")[1]) >= 100:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not crashed.exists()  # nothing that looks finished
    killed_at = int(latest(root).name.split("-")[1])
    assert 100 <= killed_at < total

    res = subprocess.run(
        distill_cmd(tiny_classifier_dir, glue, crashed, "--resume"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(crashed / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (whole, crashed))
    assert ma["history"] == mb["history"] and ma["evals"] == mb["evals"] and ma["best"] == mb["best"]
    assert not root.exists()  # checkpoints are removed once the stage is complete
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".crashed.tmp-")]  # stale temp folder cleared


def test_same_seed_same_student(tmp_path, tiny_classifier_dir, glue):
    outs = []
    for name in ("a", "b"):
        res = subprocess.run(
            distill_cmd(tiny_classifier_dir, glue, tmp_path / name, "-s", "prediction.train.epochs=2"),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        outs.append(load_file(str(tmp_path / name / "model.safetensors")))
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])
    res = subprocess.run(
        distill_cmd(tiny_classifier_dir, glue, tmp_path / "c", "-s", "prediction.train.epochs=2", "-s", "seed=7"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0
    other = load_file(str(tmp_path / "c" / "model.safetensors"))
    assert not all(torch.equal(outs[0][k], other[k]) for k in outs[0])
