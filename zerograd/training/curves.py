"""Learning curves from a run's history: one panel per metric, train and validation lines.

A history is a list of per-epoch records such as ``{"epoch": 3, "loss": 0.4, "accuracy":
0.9, "val_loss": 0.5, "val_accuracy": 0.85, "seconds": 0.2}``. A column ``P_B`` whose ``B``
is also a column is metric ``B`` measured on the data named ``P`` (val, test), drawn in
``B``'s panel; ``epoch``, ``seconds`` and ``lr`` are not drawn.
"""

from __future__ import annotations

from zerograd.serialization import atomic_write

NOT_DRAWN = ("epoch", "seconds", "lr")


def panels(record: dict) -> dict[str, list[tuple[str, str]]]:
    """``{metric: [(column, label), ...]}`` for a history record, loss first."""
    columns = [k for k in record if k not in NOT_DRAWN]
    bases = [k for k in columns
             if not any(k.endswith("_" + other) and k != other for other in columns)]
    bases.sort(key=lambda b: b != "loss")  # stable: loss first, then the record's order
    result = {base: [(base, "train")] for base in bases}
    for k in columns:
        for base in bases:
            if k != base and k.endswith("_" + base):
                result[base].append((k, k[:-len(base) - 1]))
                break
    return result


def draw_curves(history: list):
    """A matplotlib Figure of every metric per epoch; None when matplotlib is missing.

    Epochs are whole numbers, so are the ticks; a loss axis is logarithmic when the loss
    spans a decade or more, where a linear axis would flatten everything after the drop.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None

    epochs = [r["epoch"] for r in history]
    layout = panels(history[0])
    figure = Figure(figsize=(5 * len(layout), 4))
    FigureCanvasAgg(figure)  # attaches a non-interactive canvas: no display needed
    axes = figure.subplots(1, len(layout), squeeze=False)[0]
    for ax, (base, lines) in zip(axes, layout.items()):
        values = []
        for column, label in lines:
            ys = [r[column] for r in history]
            values += ys
            ax.plot(epochs, ys, marker="o", label=label)
        ax.set(xlabel="epoch", ylabel=base, title=base)
        if "loss" in base and min(values) > 0 and max(values) >= 10 * min(values):
            ax.set_yscale("log")
        # min_n_ticks=1: with one or two epochs, fewer ticks rather than fractional ones.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    return figure


def plot_curves(history: list, path: str) -> str | None:
    """``draw_curves`` saved atomically as a PNG at ``path``; None when matplotlib is missing."""
    figure = draw_curves(history)
    if figure is None:
        return None
    with atomic_write(path, "wb") as f:
        figure.savefig(f, format="png", dpi=100)
    return path


__all__ = ["draw_curves", "panels", "plot_curves"]
