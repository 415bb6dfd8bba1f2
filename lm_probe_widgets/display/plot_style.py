"""The look every plot of this package shares, readable in light and dark notebooks:
figures we create have a transparent background (no white block on a dark theme),
text, ticks and spines in a grey that reads on both, and legends without a frame,
placed beside the axes so they never cover data or baselines. Each plot takes an
optional ``ax`` and returns the Axes it drew on (the Figure is ``ax.figure``); nothing
calls ``plt.show``, so the plots work the same under Agg, inline and widget backends.
matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

INK = "#777777"  # contrast >= 4:1 on white and on JupyterLab's dark background
STYLE = {
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
    "text.color": INK,
    "axes.labelcolor": INK,
    "axes.titlecolor": INK,
    "axes.edgecolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "grid.color": INK,
    "legend.frameon": False,
    "legend.labelcolor": INK,
}


@contextlib.contextmanager
def plot_style() -> Iterator[None]:
    """The look above, for the artists created inside (the user's rcParams elsewhere).

    Only these keys are put back afterwards, not all of rcParams as `rc_context` does:
    the first figure of a session activates the backend, and the inline backend turns
    interactive mode on while doing so; restoring everything would turn it off again,
    and later figures would never be shown."""
    import matplotlib

    rc = matplotlib.rcParams
    saved = {k: rc[k] for k in STYLE}
    rc.update(STYLE)
    try:
        yield
    finally:
        rc.update(saved)


def place_legend(ax: Axes, extra: Iterable[Any] = (), **kwargs: Any) -> Any:
    """A frameless legend beside the axes (right), never over the data; `extra`:
    proxy artists to list too. Call it again after adding lines of your own."""
    handles, labels = ax.get_legend_handles_labels()
    for h in extra:
        handles.append(h)
        labels.append(h.get_label())
    if not handles:
        return None
    n = len(handles)
    opts = dict(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        frameon=False,
        fontsize="small" if n <= 16 else "x-small",
        ncol=1 if n <= 20 else 2,
    )
    opts.update(kwargs)
    with plot_style():
        return ax.legend(handles, labels, **opts)


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """`ax`, or new transparent Axes of `figsize` in the shared look."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # pyplot so notebooks show the figure inline

    with plot_style():
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    fig.patch.set_alpha(0.0)
    ax.patch.set_alpha(0.0)
    return ax
