"""How a report states a cost: only a clock that had the machine to itself (sslnb.clock), and
every number of a configuration through one formatter."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only
    from .records import Configuration


def cell(g: Configuration, key: str, digits: int = 1) -> str:
    """A configuration's number as tables print it: mean ± sd over seeds, or the one value."""
    if key not in g.mean:
        return "not run"
    m, sd = g.mean[key], g.sd[key]
    return f"{m:.{digits}f} ± {sd:.{digits}f}" if g.n > 1 else f"{m:.{digits}f}"


CLOCK_NOTE = ("Times are medians of the pretraining epochs that had the machine to themselves "
              "(sslnb.clock: an epoch during which other processes kept more than half a core "
              "busy is flagged and never stated as a cost); 'contended' marks a configuration "
              "with no such epoch, 'not checked' one whose run predates the check.")


def time_cell(g: Configuration, key: str = "isolated_epoch_time_s") -> str:
    """A cost from isolated epochs only (see CLOCK_NOTE)."""
    if key in g.mean:
        return cell(g, key, 0)
    return "contended" if any(r.epochs_contended for r in g.runs) else "not checked"
