"""The report: runs read once into typed records (records), the analyses over them (differences,
claims with contrasts and readings, learning), tables, figures (plots), results.json
(results_file), the notebooks' display helpers (notebook) and the builder (builder). Nothing
here changes a run: no stage's code version (sslnb.code_version) reaches this folder, so editing
it re-renders the report from the finished runs (`make render`) in about a minute."""
from .builder import ReportError, build, load

__all__ = ["build", "load", "ReportError"]
