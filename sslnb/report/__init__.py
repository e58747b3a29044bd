"""Presentation: figures (plots), the comparison table and observations (compare), the notebooks'
display helpers (notebook) and the report builder (builder). Nothing here changes a run, so the
engine's code version (runs.code_version) leaves this folder out: editing it rebuilds the report
from the finished runs in about a minute."""
from .builder import ReportError, build, load

__all__ = ["build", "load", "ReportError"]
