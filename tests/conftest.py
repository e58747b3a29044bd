import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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
