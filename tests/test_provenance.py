"""A run names the code it ran: the commit, and for an uncommitted tree the diff and its hash."""
import subprocess

from sslnb.runs import git_commit, git_diff


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "HOME": str(repo),
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                        "PATH": "/usr/bin:/bin"})


def test_uncommitted_changes_are_hashed_and_kept_but_outputs_are_not(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "code.py").write_text("x = 1\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "m.json").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "start")
    clean = git_commit(pkg)
    assert clean and "+" not in clean and git_diff(pkg) == ""
    (tmp_path / "logs" / "m.json").write_text('{"a": 1}\n')  # a build's outputs: still clean
    assert git_commit(pkg) == clean
    (pkg / "code.py").write_text("x = 2\n")
    first = git_commit(pkg)
    assert first.startswith(clean + "+dirty.") and "+x = 2" in git_diff(pkg)
    (pkg / "code.py").write_text("x = 3\n")  # another uncommitted tree, another name
    assert git_commit(pkg) not in (first, clean)
