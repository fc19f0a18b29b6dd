"""Reports: produced by the end-to-end run, rendered by headless Chromium, plots with content, compare."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread

from tinydistill.compare import compare, pareto
from tinydistill.pipeline import STAGES
from tinydistill.ui import detail, say, set_verbosity

pytestmark = pytest.mark.slow  # subprocesses and whole pipelines

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  document.body.setAttribute('data-probe', JSON.stringify({
    widths: imgs.map(i => i.naturalWidth),
    rows: [...document.querySelectorAll('#final-table tbody tr')].map(r => r.cells[0].textContent),
    external: [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || e.getAttribute('href'))
      .filter(u => !u.startsWith('data:'))}));
});</script></body>"""


def render_in_chromium(html_path, tmp_path):
    """Open the report in headless Chromium (offline flags) and return what the page's DOM says."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs the Debian package `chromium`")
        pytest.skip("chromium not installed (apt-get install chromium)")
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        probe.as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r'data-probe="([^"]*)"', res.stdout)
    assert match, f"no probe in the DOM; chromium said: {res.stderr[-1500:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))


def test_reports_are_written_for_every_stage_and_the_pipeline(finished_run):
    _, run, _ = finished_run
    for folder in [run, *(run / s for s in STAGES)]:
        assert (folder / "report.html").is_file() and (folder / "report.md").is_file(), folder
    md = (run / "report.md").read_text()
    assert "| teacher |" in md and "| student |" in md and "| 3-intermediate |" in md
    assert "## Environment" in md and "torch:" in md and "## Configuration" in md
    stage_md = (run / "4-prediction" / "report.md").read_text()
    assert "![loss](plots/loss.png)" in stage_md and "![dev](plots/dev.png)" in stage_md


def test_report_html_renders_offline_in_chromium(finished_run, tmp_path):
    _, run, _ = finished_run
    html = (run / "report.html").read_text()
    dom = render_in_chromium(run / "report.html", tmp_path)
    assert len(dom["widths"]) == html.count("<img") >= 8  # loss + lr for 4 stages, dev curves
    assert all(w > 0 for w in dom["widths"]), dom["widths"]
    assert dom["rows"] == ["teacher", "student"]
    assert dom["external"] == []


@pytest.mark.parametrize(
    "name", ["4-prediction-loss.png", "4-prediction-dev.png", "1-general-loss.png", "2-teacher-lr.png"]
)
def test_plots_have_content(finished_run, name):
    _, run, _ = finished_run
    img = imread(run / "plots" / name)[..., :3]
    ink = (img.mean(axis=-1) < 0.9).mean()  # share of non-white pixels: axes, labels and curves
    assert img.shape[0] > 200 and img.shape[1] > 500
    assert 0.01 < ink < 0.6, ink
    colored = (np.ptp(img, axis=-1) > 0.2).mean()  # curves are drawn in colour, axes in black
    assert colored > 0.001, colored


def test_compare_table_and_plot(finished_run, tmp_path):
    _, run, _ = finished_run
    rows = compare([run, run / "3-intermediate"], tmp_path / "cmp")
    assert [r.model for r in rows] == ["run/2-teacher", "run/4-prediction", "run/3-intermediate"]
    assert all(r.examples_per_s > 0 and r.score is not None for r in rows)
    assert rows[0].kept_percent == pytest.approx(100.0)
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 5000
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"][1]["model"] == "run/4-prediction"
    assert "| run/3-intermediate |" in (tmp_path / "cmp" / "report.md").read_text()


def test_compare_without_a_teacher_says_so_and_with_one_is_relative_to_it(finished_run, tmp_path, capsys):
    _, run, _ = finished_run
    students = [run / "3-intermediate", run / "4-prediction"]
    rows = compare(students, tmp_path / "a")
    assert "no teacher among the models" in capsys.readouterr().out
    assert all(r.kept_percent is None for r in rows)
    assert json.loads((tmp_path / "a" / "compare.json").read_text())["kept_relative_to"] is None
    rows = compare(students, tmp_path / "b", teacher=run / "2-teacher")
    assert rows[0].model == "run/2-teacher" and rows[0].kept_percent == pytest.approx(100.0)
    assert rows[2].kept_percent == pytest.approx(100 * rows[2].score / rows[0].score)
    assert json.loads((tmp_path / "b" / "compare.json").read_text())["kept_relative_to"] == "run/2-teacher"


def test_pareto_frontier():
    assert pareto([(1, 0.9), (2, 0.8), (1.5, 0.7), (3, 0.5)]) == [0, 1, 3]


def test_quiet_and_verbose(capsys):
    try:
        set_verbosity(quiet=True)
        say("status")
        detail("step line")
        assert capsys.readouterr().out == ""
        set_verbosity(verbose=True)
        say("status")
        detail("step line")
        assert capsys.readouterr().out == "status\nstep line\n"
        set_verbosity()
        detail("hidden")
        assert capsys.readouterr().out == ""
    finally:
        set_verbosity()
