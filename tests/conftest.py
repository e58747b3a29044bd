import contextlib
import io
import os
import subprocess
import sys
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from sslnb.report.records import Run

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, timeout=600):
    """Run `python -m sslnb ...` in a subprocess, as a user would (a few tests keep this path)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "sslnb", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli_in_process(*args):
    """`sslnb.__main__.main(argv)` in this process, its output captured: the same code path as the
    command line without a Python start (each start imports torch and timm: seconds)."""
    from sslnb.__main__ import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 2
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.chdir(ROOT)
    return run_cli_in_process


def assert_loads_without_sslnb(load_snippet: str, images, want, tmp_path: Path) -> None:
    """Run an export's loading snippet in a fresh Python where importing sslnb fails, on
    `images`, and check it gives the features `want` (what timm/torchvision users get)."""
    import torch
    torch.save(images, tmp_path / "images.pt")
    torch.save(want, tmp_path / "want.pt")
    script = ("import sys; sys.modules['sslnb'] = None  # importing sslnb would now fail\n"
              "import torch\nimages = torch.load('images.pt')\n" + load_snippet +
              "\nwant = torch.load('want.pt')\n"
              "assert torch.allclose(features, want, atol=1e-5), (features - want).abs().max()\n"
              "print('same features')\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "same features" in r.stdout, r.stderr[-2000:]


def run_record(**given) -> Run:
    """A Run with every field not given at a neutral value (0, '' or None)."""
    blank = {"int": 0, "float": 0.0, "str": ""}
    fields = {f.name: blank.get(f.type) for f in dataclasses.fields(Run)
              if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return Run(**{**fields, **given})
