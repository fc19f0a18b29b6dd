"""End to end: the four-stage pipeline with tiny random models on ~100 SST-2 rows."""

import json
import subprocess
import sys

import pytest
from safetensors import safe_open

from tests.conftest import tiny_pipeline_config
from tests.helpers import StopAt
from tinydistill.pipeline import STAGES, format_summary, pipeline

pytestmark = pytest.mark.slow  # subprocesses and whole pipelines

LOAD_PLAIN = """
import sys
from transformers import AutoModelForSequenceClassification, AutoTokenizer

for folder in sys.argv[1:]:
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    out = model(**tok(["a fine film"], return_tensors="pt"))
    assert out.logits.shape == (1, 2), out.logits.shape
assert not any(m.startswith("tinydistill") for m in sys.modules), "tinydistill was imported"
print("loaded", len(sys.argv) - 1)
"""


def test_every_stage_output_loads_with_plain_transformers(finished_run):
    _, run, _ = finished_run
    folders = [str(run / s) for s in STAGES]
    res = subprocess.run([sys.executable, "-c", LOAD_PLAIN, *folders], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "loaded 4" in res.stdout
    for s in STAGES:
        assert (run / s / "metrics.json").is_file() and (run / s / "tinydistill.yaml").is_file()


def test_distillation_lowers_the_distillation_loss(finished_run):
    _, run, _ = finished_run
    for stage in ("1-general", "3-intermediate", "4-prediction"):
        m = json.loads((run / stage / "metrics.json").read_text())
        before, after = m["objective_before"]["total"], m["objective_after"]["total"]
        assert after < before, (stage, before, after)
    terms = json.loads((run / "3-intermediate" / "metrics.json").read_text())["objective_after"]
    assert {"embedding", "hidden", "attention"} <= set(terms)


def test_projections_stay_out_of_the_exported_student(finished_run):
    _, run, _ = finished_run
    with safe_open(str(run / "3-intermediate" / "model.safetensors"), "pt") as f:
        assert not any("projection" in k for k in f.keys())
    with safe_open(str(run / "3-intermediate" / "training_state" / "projections.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"embeddings.weight", "layer_1.weight", "layer_2.weight"} <= keys
    with safe_open(str(run / "3-intermediate" / "training_state" / "projections.safetensors"), "pt") as f:
        assert tuple(f.get_tensor("layer_1.weight").shape) == (32, 16)  # student 16 -> teacher 32


def test_labels_and_stage_chaining(finished_run):
    cfg, run, summary = finished_run
    for s in STAGES[1:]:
        assert json.loads((run / s / "config.json").read_text())["id2label"] == {"0": "0", "1": "1"}
    pred_cfg = (run / "4-prediction" / "tinydistill.yaml").read_text()
    assert f"checkpoint: {run / '3-intermediate'}" in pred_cfg and f"teacher: {run / '2-teacher'}" in pred_cfg
    inter_cfg = (run / "3-intermediate" / "tinydistill.yaml").read_text()
    assert f"checkpoint: {run / '1-general'}" in inter_cfg
    assert summary["rows"]["student"]["parameters"] < summary["rows"]["teacher"]["parameters"]
    assert summary["rows"]["student"]["examples_per_s"] > 0
    assert "student keeps" in format_summary(summary)
    assert (run / "summary.json").is_file()


def test_rerun_skips_finished_stages(finished_run):
    cfg, run, _ = finished_run
    stamps = {s: (run / s / "model.safetensors").stat().st_mtime_ns for s in STAGES}
    lines = []
    pipeline(cfg, log=lines.append)
    assert sum("skipped" in line for line in lines) == 4
    assert stamps == {s: (run / s / "model.safetensors").stat().st_mtime_ns for s in STAGES}


def test_a_crash_leaves_no_folder_that_looks_finished(tmp_path, tiny_teacher_dir, glue):
    cfg = tiny_pipeline_config(tmp_path, tiny_teacher_dir, glue, **{"general.enabled": "false"})
    with pytest.raises(RuntimeError, match="simulated crash"):
        pipeline(cfg, log=lambda _: None, callbacks=[StopAt(1, stage="prediction")])
    out = tmp_path / "run"
    # no 1-general, no temp folders, no lock; the run's configuration for the re-run to match, and what it wrote
    names = ["2-teacher", "3-intermediate", "pipeline.yaml", "tinydistill-manifest.json"]
    assert sorted(p.name for p in out.iterdir()) == names
    written = json.loads((out / "tinydistill-manifest.json").read_text())["written"]
    assert set(written) == {*names, "4-prediction"}  # claimed before it was started
    lines = []
    pipeline(cfg, log=lines.append)  # continues where it stopped
    assert sum("skipped" in line for line in lines) == 2
    assert (out / "4-prediction" / "metrics.json").is_file()


def test_stages_switched_off_leave_no_folder_and_the_next_stage_starts_without_them(
    tmp_path, tiny_classifier_dir, glue, monkeypatch, capsys
):
    """A fine-tuned teacher and no general distillation: --stages 3,4 runs task distillation alone."""
    from tests.helpers import run_cli

    sets = [f"data.dir={glue / 'SST-2'}", "data.max_train_examples=32", "data.max_eval_examples=16"]
    sets += ["data.max_length=24", "student={layers: 2, hidden: 16, heads: 4, ffn: 32}", "report.enabled=false"]
    sets += [f"{s}.train.max_steps=2" for s in ("intermediate", "prediction")]
    args = ["pipeline", "--teacher", str(tiny_classifier_dir), "-o", str(tmp_path / "run"), "--task", "sst-2"]
    args += [a for s in sets for a in ("-s", s)]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--stages", "5")
    assert code == 2 and "--stages '5': give stage numbers from 1 to 4" in err and not (tmp_path / "run").exists()
    code, out, err = run_cli(monkeypatch, capsys, *args, "--stages", "3,4")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.name[0].isdigit()) == list(STAGES[2:])
    assert "finetune.enabled: false, the teacher serves as is" in out
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    teacher, student = saved["rows"]["teacher"], saved["rows"]["student"]
    assert teacher["score"] is not None and student["score"] is not None, saved  # the given teacher is scored too
    assert saved["kept_percent"] == pytest.approx(100 * student["score"] / teacher["score"])
