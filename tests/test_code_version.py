"""Runs survive edits: a stage's code version changes with the code that stage runs, and with
nothing else (tests on a copy of the package, edited as a developer would)."""
import shutil
from pathlib import Path

import pytest

from sslnb.code_version import code_version

from conftest import ROOT

STAGES = ("pretrain", "evaluate")


@pytest.fixture
def pkg(tmp_path) -> Path:
    dst = tmp_path / "sslnb"
    shutil.copytree(ROOT / "sslnb", dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def versions(pkg: Path, method: str = "simclr") -> dict:
    return {s: code_version(s, package=pkg, method_file=pkg / "methods" / f"{method}.py")
            for s in STAGES}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_docstring_and_comment_edits_change_no_stage(pkg):
    before = versions(pkg)
    edit(pkg / "train.py", '"""Self-supervised pretraining of one run',
         '"""Self-supervised pretraining (reworded) of one run')
    edit(pkg / "probe.py", "\n", "\n# a comment added at the top\n")
    edit(pkg / "losses.py", "def nt_xent(", "# what SimCLR minimises\ndef nt_xent(")
    assert versions(pkg) == before


def test_a_new_method_file_and_a_new_loss_change_no_stage(pkg):
    before = versions(pkg)
    (pkg / "methods" / "toy.py").write_text(
        "from .base import Method\n\nclass Toy(Method):\n    name = 'toy'\n\nMETHOD = Toy()\n")
    (pkg / "losses.py").write_text((pkg / "losses.py").read_text()
                                   + "\n\ndef toy_loss(a, b):\n    return (a - b).abs().mean()\n")
    assert versions(pkg) == before


def test_the_report_is_no_stage(pkg):
    before = versions(pkg)
    edit(pkg / "report" / "summary.py", "def read_run(", "def unused():\n    return 1\n\n\ndef read_run(")
    assert versions(pkg) == before


def test_a_probe_change_reevaluates_but_does_not_retrain(pkg):
    before = versions(pkg)
    edit(pkg / "probe.py", "momentum=0.9)\n    n = train_x.shape[0]", "momentum=0.8)\n    n = train_x.shape[0]")
    after = versions(pkg)
    assert after["pretrain"] == before["pretrain"]
    assert after["evaluate"] != before["evaluate"]


def test_a_loss_change_retrains(pkg):
    before = versions(pkg)
    edit(pkg / "losses.py", "@full_precision\ndef nt_xent(",
         "def nt_xent_helper():\n    return 0\n\n\n@full_precision\ndef nt_xent(")
    assert versions(pkg) == before  # a new function nothing calls
    edit(pkg / "losses.py", "return F.cross_entropy(logits, positive)",
         "return 2.0 * F.cross_entropy(logits, positive)")
    after = versions(pkg)
    assert after["pretrain"] != before["pretrain"]  # (and so its evaluation: new weights)


def test_one_methods_file_is_not_another_methods_code(pkg):
    simclr, mae = versions(pkg, "simclr"), versions(pkg, "mae")
    edit(pkg / "methods" / "mae.py", "keep = int(length", "keep = 0 + int(length")
    assert versions(pkg, "simclr") == simclr
    assert versions(pkg, "mae")["pretrain"] != mae["pretrain"]


def test_the_running_package_gives_stable_versions():
    """Computed twice, and by the registry's own method lookup, the same."""
    assert code_version("pretrain", "mae") == code_version("pretrain", "mae")
    assert code_version("pretrain", "mae") == code_version(
        "pretrain", package=ROOT / "sslnb", method_file=ROOT / "sslnb" / "methods" / "mae.py")
    assert code_version("pretrain", "mae") != code_version("pretrain", "simclr")
