"""How a report states a cost: only a clock that had the machine to itself (sslnb.clock)."""
from __future__ import annotations


def _cell(g: dict, key: str) -> str:
    m, sd = g["mean"][key], g["sd"].get(key, 0.0)
    return f"{m:.0f} ± {sd:.0f}" if g["n"] > 1 else f"{m:.0f}"


CLOCK_NOTE = ("Times are medians of the pretraining epochs that had the machine to themselves "
              "(sslnb.clock: an epoch during which other processes kept more than half a core "
              "busy is flagged and never stated as a cost); 'contended' marks a configuration "
              "with no such epoch, 'not checked' one whose run predates the check.")


def time_cell(g: dict, key: str = "isolated_epoch_time_s") -> str:
    """A cost from isolated epochs only (see CLOCK_NOTE)."""
    if key in g["mean"]:
        return _cell(g, key)
    return "contended" if any(r.get("epochs_contended") for r in g["runs"]) else "not checked"
