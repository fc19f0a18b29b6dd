"""Output folders: never destroy what tinydistill did not write, one run per folder, interrupts that leave
nothing finished-looking and say how to go on, and resumes that refuse a changed configuration."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import tiny_pipeline_config
from tests.helpers import SMALL_STUDENT, StopAt, config_of, distill_args, run_cli, sets, slice_of
from tinydistill.checkpoints import checkpoint_root, latest
from tinydistill.errors import TinyDistillError
from tinydistill.outputs import OutputLock, _process_start


@pytest.fixture
def user_folder(tmp_path):
    """A folder of the user's that a wrong -o must never empty."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    return folder


def _data_args(glue, n=64):
    return sets("data.task=sst-2", f"data.dir={glue / 'SST-2'}", *slice_of(n, 32, 32), "report.enabled=false")


def _small_student():
    return sets(SMALL_STUDENT)


def _distill(teacher, glue, out, *extra):
    args = distill_args(teacher, out, *slice_of(64, 32, 32), "report.enabled=false", SMALL_STUDENT, task=None)
    return [*args, *_data_args(glue), "-s", "prediction.train.max_steps=2", *extra]


def _command_onto(name, out, teacher, classifier, glue, finished_run, tmp_path):
    """The CLI arguments of each writing command, with output ``out``."""
    csv = tmp_path / "train.csv"
    csv.write_text("text,label\nnice film,pos\nawful film,neg\n", encoding="utf-8")
    return {
        "finetune": ["finetune", "--teacher", str(teacher), *_data_args(glue), "-o", str(out)],
        "general": ["general", "--teacher", str(teacher), *_small_student(), *_data_args(glue), "-o", str(out)],
        "distill": _distill(classifier, glue, out),
        "distill-both": ["distill", "--teacher", str(classifier), *_data_args(glue), *_small_student(), "-o", str(out)],
        "pipeline": ["pipeline", "--teacher", str(teacher), *_data_args(glue), "-o", str(out)],
        "augment": ["augment", "--task", "classification", "-s", f"data.train_file={csv}", "-o", str(out)],
        "export": ["export", str(classifier), "-o", str(out)],
        "bench": ["bench", str(classifier), str(classifier), *_data_args(glue), "-o", str(out)],
        "compare": ["compare", str(finished_run[1]), "-o", str(out)],
    }[name]


COMMANDS = ["finetune", "general", "distill", "distill-both", "pipeline", "augment", "export", "bench", "compare"]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_an_existing_folder_of_the_user_is_refused_and_kept(
    monkeypatch, capsys, tmp_path, user_folder, command, tiny_teacher_dir, tiny_classifier_dir, glue, finished_run
):
    args = _command_onto(command, user_folder, tiny_teacher_dir, tiny_classifier_dir, glue, finished_run, tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2, err
    assert "already exists and is not a finished" in err and "--overwrite" in err and err.count("\n") == 1
    assert sorted(p.name for p in user_folder.iterdir()) == ["precious.txt"]
    assert not list(tmp_path.glob(".mine.*"))  # no lock, no temporary folder left beside it


@pytest.mark.parametrize(
    "where,msg",
    [
        ("data", "is the data folder"),
        ("data/inside", "is inside the data folder"),
        ("teacher", "is the teacher"),
    ],
)
def test_output_equal_to_or_inside_an_input_is_refused(
    monkeypatch, capsys, tmp_path, glue, tiny_classifier_dir, where, msg
):
    teacher = tmp_path / "teacher"
    os.symlink(tiny_classifier_dir, teacher)
    out = {"data": glue / "SST-2", "data/inside": glue / "SST-2" / "inside", "teacher": teacher}[where]
    code, _, err = run_cli(monkeypatch, capsys, *_distill(teacher, glue, out, "--overwrite"))
    assert code == 2 and msg in err, err
    assert (glue / "SST-2" / "train.tsv").is_file() and (tiny_classifier_dir / "config.json").is_file()


def test_overwrite_never_deletes_a_folder_that_holds_an_input(monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue):
    import shutil

    teacher = tmp_path / "project" / "teacher"
    shutil.copytree(tiny_classifier_dir, teacher)
    code, _, err = run_cli(monkeypatch, capsys, *_distill(teacher, glue, tmp_path / "project", "--overwrite"))
    assert code == 2 and "holds the teacher" in err
    assert (teacher / "model.safetensors").is_file()


def test_output_dot_is_refused_clearly(monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = run_cli(monkeypatch, capsys, *_distill(tiny_classifier_dir, glue, ".", "--overwrite"))
    assert code == 2 and "is the current folder" in err and "empty name" not in err


@pytest.mark.slow
def test_overwrite_replaces_a_foreign_folder(monkeypatch, capsys, tmp_path, user_folder, tiny_classifier_dir, glue):
    code, out, err = run_cli(monkeypatch, capsys, *_distill(tiny_classifier_dir, glue, user_folder, "--overwrite"))
    assert code == 0, err
    assert "replacing it" in out and not (user_folder / "precious.txt").exists()
    assert (user_folder / "metrics.json").is_file()
    # a finished output of the same command is replaced without asking (re-running a stage)
    code, _, err = run_cli(monkeypatch, capsys, *_distill(tiny_classifier_dir, glue, user_folder))
    assert code == 0, err


def test_augment_onto_its_own_data_folder_is_refused(monkeypatch, capsys, tmp_path):
    data = tmp_path / "glue_copy"
    data.mkdir()
    (data / "train.tsv").write_text("sentence\tlabel\na fine film\t1\na dull film\t0\n", encoding="utf-8")
    (data / "dev.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\n", encoding="utf-8")
    before = {p.name: p.read_text() for p in data.iterdir()}
    code, _, err = run_cli(
        monkeypatch, capsys, "augment", "--task", "sst-2", "--data-dir", str(data), "-o", str(data), "--overwrite"
    )
    assert code == 2 and "is the data folder" in err
    assert {p.name: p.read_text() for p in data.iterdir()} == before and not (data / "dev.tsv").is_symlink()


def _sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_second_run_on_the_same_folder_is_refused_and_the_first_keeps_its_files(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue
):
    out = tmp_path / "out"
    first = _sleeper()  # stands in for a live first run: its lock, its temporary folder, its checkpoints
    try:
        lock = tmp_path / ".out.lock"
        lock.write_text(
            json.dumps(
                {
                    "pid": first.pid,
                    "host": socket.gethostname(),
                    "start": _process_start(first.pid),
                    "since": "now",
                    "command": "tinydistill distill",
                }
            )
        )
        (tmp_path / ".out.tmp-1234abcd").mkdir()
        (checkpoint_root(out) / "step-00000010").mkdir(parents=True)
        code, _, err = run_cli(monkeypatch, capsys, *_distill(tiny_classifier_dir, glue, out, "--overwrite"))
        assert code == 2 and f"being written by another run (pid {first.pid}" in err
        assert (tmp_path / ".out.tmp-1234abcd").is_dir() and (checkpoint_root(out) / "step-00000010").is_dir()
        assert lock.is_file() and not out.exists()
    finally:
        first.kill()
        first.wait()
    # its owner is gone now: the lock is stale and the next run takes it over, saying so
    code, stdout, err = run_cli(monkeypatch, capsys, *_distill(tiny_classifier_dir, glue, out))
    assert code == 0, err
    assert f"taking over {lock}" in stdout and not lock.exists() and (out / "metrics.json").is_file()


def test_a_lock_held_on_another_host_is_not_taken(tmp_path):
    (tmp_path / ".x.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "then", "command": "c"}))
    with pytest.raises(TinyDistillError, match="if that run is dead, delete"):
        OutputLock(tmp_path / "x").acquire()


def _cli(*args):
    return [sys.executable, "-m", "tinydistill.cli", *args]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_exits_non_zero_names_the_run_and_resumes(tmp_path, tiny_classifier_dir, glue, sig, code):
    out = tmp_path / "out"
    args = _distill(
        tiny_classifier_dir,
        glue,
        out,
        "-s",
        "prediction.train.max_steps=400",
        "-s",
        "prediction.train.batch_size=4",
        "-s",
        "prediction.train.checkpoint_every=20",
    )
    proc = subprocess.Popen(
        _cli("--quiet", *args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        found = latest(checkpoint_root(out))
        if found is not None and int(found.name.split("-")[1]) >= 40:
            proc.send_signal(sig)
            break
        time.sleep(0.02)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == code, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: interrupted ({sig.name}) while writing {out}") and "--resume" in line
    assert "Traceback" not in err and not out.exists() and not (tmp_path / ".out.lock").exists()
    assert not list(tmp_path.glob(".out.tmp-*"))
    res = subprocess.run(_cli("--quiet", *args, "--resume"), env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == 400


@pytest.mark.slow
def test_resume_refuses_a_changed_configuration(monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue):
    from tinydistill.stages import distill

    out = tmp_path / "out"
    args = _distill(
        tiny_classifier_dir,
        glue,
        out,
        "-s",
        "prediction.train.max_steps=6",
        "-s",
        "prediction.train.checkpoint_every=2",
    )
    with pytest.raises(RuntimeError, match="simulated crash"):  # the command line's run, stopped after step 3
        distill(config_of(args), "prediction", callbacks=[StopAt(3)])
    assert latest(checkpoint_root(out)) is not None
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        *args,
        "--resume",
        "-s",
        "prediction.train.learning_rate=0.001",
        "-s",
        "seed=7",
        "-s",
        "prediction.train.log_every=1",
    )
    assert code == 2 and "cannot resume" in err
    assert "prediction.train.learning_rate: 3e-05 -> 0.001" in err and "seed: 42 -> 7" in err
    assert "log_every" not in err  # logging does not change the result
    code, _, err = run_cli(monkeypatch, capsys, *args, "--resume", "-s", "prediction.train.log_every=1")
    assert code == 0, err


@pytest.mark.slow
def test_pipeline_rerun_with_other_settings_is_refused_unless_overwrite(tmp_path, tiny_teacher_dir, glue):
    from tinydistill.pipeline import pipeline

    cfg = tiny_pipeline_config(tmp_path, tiny_teacher_dir, glue, **{"general.enabled": "false"})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(TinyDistillError, match="which a `pipeline` run does not write"):
        pipeline(cfg, log=lambda _: None)
    cfg = cfg.model_copy(update={"overwrite": True})
    pipeline(cfg, log=lambda _: None)
    changed = cfg.model_copy(
        update={
            "overwrite": False,
            "prediction": cfg.prediction.model_copy(
                update={"losses": cfg.prediction.losses.model_copy(update={"temperature": 4.0})}
            ),
        }
    )
    with pytest.raises(TinyDistillError, match=r"prediction.losses.temperature: 1.0 -> 4.0.*--overwrite"):
        pipeline(changed, log=lambda _: None)
    lines = []
    pipeline(changed.model_copy(update={"overwrite": True}), log=lines.append)
    assert not any("skipped" in line for line in lines)  # started over
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"  # what the pipeline did not write stays


def _pipeline_student(cfg) -> dict:
    return load_file(str(os.path.join(cfg.output_dir, "4-prediction", "model.safetensors")))


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory, tiny_teacher_dir, glue):
    """An uninterrupted tiny pipeline that checkpoints every 2 steps (the reference for the interrupted ones)."""
    from tinydistill.pipeline import pipeline

    sets = {f"{s}.train.checkpoint_every": "2" for s in ("general", "finetune", "intermediate", "prediction")}
    cfg = tiny_pipeline_config(tmp_path_factory.mktemp("whole"), tiny_teacher_dir, glue, **sets)
    pipeline(cfg, log=lambda _: None)
    return sets, _pipeline_student(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["general", "finetune", "intermediate", "prediction"])
def test_pipeline_interrupted_in_each_stage_resumes_to_the_same_student(
    monkeypatch, tmp_path, tiny_teacher_dir, glue, checkpointed, stage
):
    from tinydistill.pipeline import pipeline

    sets, reference = checkpointed
    cfg = tiny_pipeline_config(tmp_path, tiny_teacher_dir, glue, **sets)
    with pytest.raises(KeyboardInterrupt):  # after the step-4 checkpoint
        pipeline(cfg, log=lambda _: None, callbacks=[StopAt(5, KeyboardInterrupt(), stage)])
    folder = {
        "general": "1-general",
        "finetune": "2-teacher",
        "intermediate": "3-intermediate",
        "prediction": "4-prediction",
    }[stage]
    run = tmp_path / "run"
    assert not (run / folder).exists() and latest(checkpoint_root(run / folder)).name == "step-00000004"
    pipeline(cfg, log=lambda _: None)
    student = _pipeline_student(cfg)
    assert all(torch.equal(student[k], reference[k]) for k in reference)


def test_the_demo_writes_its_data_where_the_pipeline_accepts_it(tmp_path):
    from tinydistill.demo import demo_config
    from tinydistill.outputs import check_output
    from tinydistill.pipeline import ENTRIES

    cfg = demo_config(tmp_path / "bbc", max_train=20)
    assert not Path(cfg.data.train_file).resolve().is_relative_to((tmp_path / "bbc").resolve())
    check_output(cfg.output_dir, "pipeline", cfg.input_paths(), holds=ENTRIES)  # no refusal


def _pipeline_args(teacher, glue, out, *extra):
    return ["pipeline", "--teacher", str(teacher), *_data_args(glue), *_small_student(), "-o", str(out), *extra]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_pipeline_never_takes_a_users_entry_that_bears_one_of_its_names(
    monkeypatch, capsys, tmp_path, tiny_teacher_dir, glue, overwrite
):
    out = tmp_path / "exp1"
    (out / "plots").mkdir(parents=True)
    (out / "report.md").write_text("my notes")
    (out / "plots" / "figure1.png").write_bytes(b"png")
    code, stdout, err = run_cli(monkeypatch, capsys, *_pipeline_args(tiny_teacher_dir, glue, out, *overwrite))
    assert code == 2 and "holds plots, report.md, which a `pipeline` run writes but no earlier run" in err
    assert "removing" not in stdout
    assert (out / "report.md").read_text() == "my notes" and (out / "plots" / "figure1.png").read_bytes() == b"png"
    assert sorted(p.name for p in out.iterdir()) == ["plots", "report.md"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_users_config_file_in_the_output_folder_is_an_input(
    monkeypatch, capsys, tmp_path, tiny_teacher_dir, tiny_classifier_dir, glue, overwrite
):
    out = tmp_path / "exp1"
    out.mkdir()
    config = out / "pipeline.yaml"
    config.write_text("seed: 7\n")
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "-q",
        *_pipeline_args(tiny_teacher_dir, glue, out, *overwrite)[:1],
        "-c",
        str(config),
        *_pipeline_args(tiny_teacher_dir, glue, out, *overwrite)[1:],
    )
    assert code == 2 and "holds pipeline.yaml, which a `pipeline` run writes" in err
    assert config.read_text() == "seed: 7\n"
    # a stage command replaces its folder whole: one holding its own config file is refused, --overwrite or not
    own = tmp_path / "exp2"
    own.mkdir()
    (own / "config.yaml").write_text("seed: 7\n")
    code, _, err = run_cli(
        monkeypatch, capsys, *_distill(tiny_classifier_dir, glue, own, "-c", str(own / "config.yaml"), *overwrite)
    )
    assert code == 2 and "holds the config file" in err
    assert (own / "config.yaml").read_text() == "seed: 7\n"


def test_probe_files_are_inputs(tmp_path):
    from tinydistill.config import load_config
    from tinydistill.outputs import check_output

    (tmp_path / "probe.csv").write_text("sentence,label\na,0\n")
    cfg = load_config(
        None,
        [
            f"data.embedding.probe_train_file={tmp_path / 'probe.csv'}",
            f"data.embedding.probe_dev_file={tmp_path / 'probe.csv'}",
        ],
    )
    with pytest.raises(TinyDistillError, match="holds the probe train file"):
        check_output(tmp_path, "prediction", cfg.input_paths(), overwrite=True)


def test_every_path_setting_of_the_schema_is_an_input():
    """A new file or folder setting is an input unless it is an output: the output-folder checks then see it. The
    schema is the config's sections and every registered task kind's settings section."""
    from pydantic import BaseModel

    from tinydistill.config import Config, load_config
    from tinydistill.registry import settings_sections

    outputs = {"output_dir", "cache_dir"}
    named = re.compile(r"(^|_)(file|files|dir|corpus|vectors|lm|teacher|checkpoint|path)$")

    def unmarked(model: type[BaseModel], prefix: str = "") -> set[str]:
        found = set()
        for name, field in model.model_fields.items():
            kind, extra = field.annotation, field.json_schema_extra
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= unmarked(kind, f"{prefix}{name}.")
            elif named.search(name) and name not in outputs and not (isinstance(extra, dict) and "input" in extra):
                found.add(prefix + name)
        return found

    schema = {"": Config, **{f"data.{key}.": model for key, model in settings_sections().items()}}
    assert not set().union(*(unmarked(model, prefix) for prefix, model in schema.items()))
    cfg = load_config(None, ["data.embedding.probe_dev_file=x.csv", "data.class_files={a: a.txt, b: b.txt}"])
    paths = cfg.input_paths()
    assert paths["probe dev file"] == "x.csv" and paths["class file of 'b'"] == "b.txt" and "config file" in paths


def test_a_finished_output_holding_a_file_its_run_did_not_write_is_not_replaced_silently(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue
):
    out = tmp_path / "s"
    code, _, err = run_cli(monkeypatch, capsys, *_distill(tiny_classifier_dir, glue, out))
    assert code == 0, err
    assert "model.safetensors" in json.loads((out / "tinydistill-manifest.json").read_text())["written"]
    (out / "my-analysis.ipynb").write_text("{}")
    code, _, err = run_cli(monkeypatch, capsys, *_distill(tiny_classifier_dir, glue, out))
    assert code == 2 and "my-analysis.ipynb in it were not written by that run" in err
    assert (out / "my-analysis.ipynb").exists()


@pytest.mark.slow
def test_pipeline_overwrite_removes_only_what_its_manifest_lists_and_reruns_from_its_own_config(
    monkeypatch, capsys, tmp_path, tiny_teacher_dir, glue
):
    from tinydistill.config import load_config
    from tinydistill.pipeline import pipeline

    cfg = tiny_pipeline_config(
        tmp_path, tiny_teacher_dir, glue, **{"general.enabled": "false", "report.enabled": "false"}
    )
    out = Path(cfg.output_dir)
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    pipeline(cfg.model_copy(update={"overwrite": True}), log=lambda _: None)
    manifest = json.loads((out / "tinydistill-manifest.json").read_text())
    assert manifest["kept"] == ["notes.txt"] and "notes.txt" not in manifest["written"]
    lines = []
    pipeline(load_config(out / "pipeline.yaml"), log=lines.append)  # its own saved config (run with --overwrite)
    assert sum("skipped" in line for line in lines) == 3
    lines = []
    pipeline(cfg.model_copy(update={"overwrite": True}), log=lines.append)
    assert any("removing 4 entries the earlier run wrote" in line for line in lines)  # 3 stages and the summary
    assert (out / "notes.txt").read_text() == "mine"
