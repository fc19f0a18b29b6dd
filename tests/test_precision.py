"""Mixed precision: what ``auto`` resolves to, and the teacher's own precision inside a student's autocast."""

import torch

from tinydistill import precision


def test_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve("auto", "cpu") == "bf16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve("auto", "cpu") == "no"
    assert precision.resolve("fp16", "cpu") == "fp16" and precision.resolve("no", "cpu") == "no"


def test_fp32_teacher_stays_fp32_inside_a_bf16_step():
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lin(x).dtype == torch.bfloat16
        with precision.autocast("no", "cpu"):
            assert lin(x).dtype == torch.float32
        with precision.autocast("bf16", "cpu"):
            assert lin(x).dtype == torch.bfloat16
