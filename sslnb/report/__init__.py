"""Presentation: figures (plots), the comparison table and observations (compare), the notebooks'
display helpers (notebook) and the report builder (builder). Nothing here changes a run: no stage's
code version (sslnb.code_version) reaches this folder, so editing it re-renders the report from
the finished runs (`make render`) in about a minute."""
from .builder import ReportError, build, load

__all__ = ["build", "load", "ReportError"]
