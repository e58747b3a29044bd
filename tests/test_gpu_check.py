"""bench/gpu_check.py, the one check a short GPU window runs: its header states the budgets it
runs under, finished items are on disk at once, an item past its budget is stopped, what would
not fit is skipped and said, and a run killed midway keeps everything that finished."""
import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "bench" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def start(out: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # no PYTHONPATH: the script finds sslnb
    env.pop("PYTHONPATH", None)
    return subprocess.Popen([sys.executable, str(SCRIPT), "--out", str(out), *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def lines(out: Path) -> list[dict]:
    (results,) = out.glob("*.jsonl")
    return [json.loads(line) for line in results.read_text().splitlines()]


def test_header_states_each_budget_and_a_total_under_the_deadline():
    gc = load_script()
    items = gc.plan()
    header = gc.__doc__
    total = re.search(r"Total today: (.+) = (\d+) s", header)
    assert total, "the header must state today's total"
    assert sum(i.budget_s for i in items) == int(total.group(2)) <= gc.DEADLINE_S
    terms = total.group(1).split(" + ")
    expected = [str(gc.BUDGET_S["peak"]), str(gc.BUDGET_S["sync"]),
                f"{sum(i.kind == 'bench' for i in items) - 1} x {gc.BUDGET_S['bench']}",
                f"{sum(i.kind == 'demo' for i in items)} x {gc.BUDGET_S['demo']}",
                str(gc.BUDGET_S["compiled"])]
    assert terms == expected, "revise the header's total when a configuration joins"
    for kind, budget in gc.BUDGET_S.items():
        row = next(line for line in header.splitlines() if line.strip().startswith(
            {"peak": "peak", "sync": "sync", "bench": "bench <config>", "demo": "demo <run>",
             "compiled": "compiled"}[kind]))
        assert re.search(rf"\b{budget} s\b", row), (kind, row)
    assert items[-1].name.startswith("compiled"), "the compiled ViT-B runs last"
    assert [i.name for i in items[:2]] == ["peak", "sync"]


def test_what_would_not_fit_the_deadline_is_skipped_and_said(tmp_path):
    p = start(tmp_path, "--deadline", "20", "--commit", "abc1234")  # every budget is over 20 s
    p.wait(timeout=120)
    got = lines(tmp_path)
    assert got[0]["item"] == "header" and {"torch", "torchvision", "timm"} <= set(got[0])
    assert got[0]["commit"] == "abc1234"
    assert [g["item"] for g in got[1:]] == [i.name for i in load_script().plan()]
    assert all(g["status"] == "skipped" and "left" in g["reason"] for g in got[1:])
    assert len(list(tmp_path.iterdir())) == 2


def test_an_item_past_its_budget_is_stopped_and_the_check_goes_on(tmp_path):
    """Budgets scaled to a tenth of a second: each item's worker is killed at its budget and the
    next item starts a new one; the check ends at its (scaled) deadline."""
    t0 = time.monotonic()
    p = start(tmp_path, "--device", "cpu", "--scale", "0.01")
    p.wait(timeout=60)
    got = lines(tmp_path)[1:]
    assert time.monotonic() - t0 < 30
    assert got and {g["status"] for g in got} <= {"timeout", "skipped"}
    timed_out = [g for g in got if g["status"] == "timeout"]
    assert timed_out and all(g["seconds"] < g["budget_s"] + 5 for g in timed_out)
    assert len(got) == len(load_script().plan())


@pytest.mark.slow
def test_a_dry_run_killed_at_a_random_moment_keeps_every_finished_item(tmp_path):
    p = start(tmp_path, "--device", "cpu", "--scale", "20", "--steps", "2", "--warmup", "1",
              "--set", "data.image_size=32", "--set", "train.batch_size=8",
              "--demo-set", "train.epochs=1", "--demo-set", "data.num_train=256",
              "--demo-set", "eval.probe_epochs=2")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the peak and sync items done: the run is under way
        if list(tmp_path.glob("*.jsonl")) and len(lines(tmp_path)) >= 3:
            break
        time.sleep(0.5)
    time.sleep(random.uniform(0, 20))
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    files = sorted(f.name for f in tmp_path.iterdir())
    assert len(files) <= 3, files
    got = lines(tmp_path)  # every line whole
    (log,) = tmp_path.glob("*.log")
    done = re.findall(r"\] done (.+?): (\w+) in", log.read_text())
    recorded = {g["item"]: g["status"] for g in got}
    assert len(done) >= 2
    for item, status in done:
        assert recorded.get(item) == status, (item, status, recorded)
    assert got[1]["item"] == "peak" and got[2]["item"] == "sync" and got[2]["all_clean"]


def test_an_unwritable_output_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = start(blocker / "out")
    text, _ = p.communicate(timeout=60)
    assert p.returncode == 2 and "--out" in text and "nothing ran" in text
    assert "Traceback" not in text
