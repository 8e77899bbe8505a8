"""Figures for the course: slice montages, Grad-CAM overlays, histograms, training and evaluation plots.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``. The
figure is closed in pyplot's registry before it is returned, so in Jupyter it is displayed once,
as the cell's result (put it last in the cell or call ``display(fig)``), figures made in a loop
do not pile up, and ``fig.savefig(...)`` still works.

Orientation: every slice is drawn with :func:`ctutils.orientation.display_slice` (radiological
convention: anterior at the top, the patient's right on the viewer's **left**) and labelled "R"
and "L" at the sides. There is no other transpose or flip in this module.

Volumes may be given as ``(X, Y, Z)`` numpy arrays (RAS+, e.g. a row of the cache) or as
:class:`ctutils.io.Volume` objects (then HU values and the in-plane voxel aspect are used).
"""

from __future__ import annotations

import csv
import json
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ctutils.frontend import widgets_live
from ctutils.orientation import display_slice

__all__ = [
    "hu_histogram",
    "mistakes_gallery",
    "overlay_montage",
    "plot_before_after",
    "plot_calibration",
    "plot_confusion",
    "plot_history",
    "plot_pr",
    "plot_roc",
    "slice_montage",
    "slice_viewer",
]

PANEL_INCHES = 1.7  # size of one slice panel; keeps committed notebooks small
#: Default panel size of :func:`overlay_montage`: large enough to see small lesions under the heat.
OVERLAY_PANEL_INCHES = 2.5
MAX_WIDTH_INCHES = 10.0
#: Readable y-axis names of the training curves (:func:`plot_history`); other keys are shown as is.
HISTORY_LABELS = {"loss": "binary cross-entropy", "auc": "ROC-AUC", "acc": "accuracy",
                  "accuracy": "accuracy", "binary_accuracy": "accuracy"}
#: Chance level of each training curve for balanced classes: a constant P = 0.5 has a binary
#: cross-entropy of ln 2, a ROC-AUC of 0.5 and (with balanced classes) an accuracy of 0.5.
CHANCE_LEVELS = {"loss": math.log(2.0), "auc": 0.5, "acc": 0.5, "accuracy": 0.5, "binary_accuracy": 0.5}
HEAT_LABEL = "Grad-CAM heat\n(fraction of the maximum)"  # two lines: fits beside one row of panels
_COLORBAR_INCHES = 0.6
_COLORBAR_MIN_HEIGHT_INCHES = 2.0
#: The "R" / "L" markers: large, bold, white with a black outline, legible on air, lung and bone alike.
_SIDE_LABEL = {"color": "white", "fontsize": 12, "fontweight": "bold"}
_SIDE_OUTLINE_POINTS = 3.0


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _new_figure(width: float, height: float) -> Any:
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(min(width, MAX_WIDTH_INCHES), height), layout="constrained")


def _done(fig: Any) -> Any:
    """Detach the figure from pyplot (no double display in notebooks, no leak) and return it."""
    import matplotlib.pyplot as plt

    plt.close(fig)
    return fig


def _volume_array(volume: Any, *, name: str = "volume") -> tuple[np.ndarray, float]:
    """``(data (X, Y, Z), in-plane aspect dy/dx)`` of an array or a :class:`ctutils.io.Volume`."""
    data = getattr(volume, "data", volume)
    arr = np.asarray(data)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected an (X, Y, Z) volume, got shape {np.shape(data)}")
    spacing = getattr(volume, "spacing_mm", None)
    aspect = float(spacing[1]) / float(spacing[0]) if spacing is not None else 1.0
    return arr, aspect


def _intensity_range(
    arrays: Sequence[np.ndarray],
    *,
    hu_window: tuple[float, float] | None,
    vmin: float | None,
    vmax: float | None,
) -> tuple[float, float]:
    """Grey-level range shared by all panels: ``hu_window``, else vmin/vmax, else the data range."""
    if hu_window is not None:
        if vmin is not None or vmax is not None:
            raise ValueError("give either hu_window or vmin/vmax, not both")
        low, high = (float(v) for v in hu_window)
    else:
        low = float(min(np.min(a) for a in arrays)) if vmin is None else float(vmin)
        high = float(max(np.max(a) for a in arrays)) if vmax is None else float(vmax)
    if not high > low:
        high = low + 1.0  # a constant image: show it mid-grey rather than fail
    return low, high


def _choose_slices(n_slices: int, *, n: int, slices: Sequence[int] | None) -> list[int]:
    if slices is not None:
        chosen = [int(z) for z in slices]
        bad = [z for z in chosen if not 0 <= z < n_slices]
        if bad or not chosen:
            raise ValueError(f"slices must be non-empty and within 0..{n_slices - 1}, got {list(slices)}")
        return chosen
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [int(z) for z in np.unique(np.linspace(0, n_slices - 1, min(int(n), n_slices)).round())]


def _grid(fig: Any, n_panels: int, cols: int) -> list[Any]:
    """``n_panels`` axes on a grid with ``cols`` columns (no empty axes left over)."""
    cols = max(1, min(int(cols), n_panels))
    rows = math.ceil(n_panels / cols)
    return [fig.add_subplot(rows, cols, i + 1) for i in range(n_panels)]


def _label_sides(ax: Any) -> None:
    """Mark the patient's right (viewer's left) and left on an axial image."""
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=_SIDE_OUTLINE_POINTS, foreground="black")]
    ax.text(0.03, 0.5, "R", transform=ax.transAxes, ha="left", va="center", path_effects=outline, **_SIDE_LABEL)
    ax.text(0.97, 0.5, "L", transform=ax.transAxes, ha="right", va="center", path_effects=outline, **_SIDE_LABEL)


def _show_slice(
    ax: Any,
    data: np.ndarray,
    z: int,
    *,
    vmin: float,
    vmax: float,
    aspect: float,
    cmap: str = "gray",
    heatmap: np.ndarray | None = None,
    alpha: float = 0.4,
    heat_cmap: str = "jet",
    contour: np.ndarray | None = None,
    contour_color: str = "white",
) -> None:
    ax.imshow(display_slice(data, z), cmap=cmap, vmin=vmin, vmax=vmax, aspect=aspect,
              interpolation="nearest")
    if heatmap is not None:
        ax.imshow(display_slice(heatmap, z), cmap=heat_cmap, vmin=0.0, vmax=1.0, alpha=alpha,
                  aspect=aspect, interpolation="bilinear")
    if contour is not None:
        outline = display_slice(contour, z).astype(np.float32)
        if outline.min() < 0.5 <= outline.max():  # only where the slice crosses the mask's edge
            ax.contour(outline, levels=[0.5], colors=[contour_color], linewidths=0.9)
    ax.set_xticks([])
    ax.set_yticks([])
    _label_sides(ax)


def _montage(
    data: np.ndarray,
    *,
    slices: list[int],
    cols: int,
    vmin: float,
    vmax: float,
    aspect: float,
    title: str | None,
    cmap: str,
    heatmap: np.ndarray | None = None,
    alpha: float = 0.4,
    heat_cmap: str = "jet",
    panel_size: float = PANEL_INCHES,
    contour: np.ndarray | None = None,
    contour_color: str = "white",
    colorbar_label: str | None = None,
) -> Any:
    cols = max(1, min(int(cols), len(slices)))
    rows = math.ceil(len(slices) / cols)
    bar = _COLORBAR_INCHES if colorbar_label else 0.0
    height = rows * panel_size * aspect + (0.3 if title else 0.0)
    if colorbar_label:
        height = max(height, _COLORBAR_MIN_HEIGHT_INCHES)  # room for the bar's label
    fig = _new_figure(cols * panel_size + bar, height)
    axes = _grid(fig, len(slices), cols)
    for ax, z in zip(axes, slices):
        _show_slice(ax, data, z, vmin=vmin, vmax=vmax, aspect=aspect, cmap=cmap, heatmap=heatmap,
                    alpha=alpha, heat_cmap=heat_cmap, contour=contour, contour_color=contour_color)
        ax.set_title(f"z = {z}", fontsize=8)
    if colorbar_label:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=heat_cmap)
        cbar = fig.colorbar(mappable, ax=axes, shrink=0.9, aspect=30, pad=0.02)
        cbar.set_label(colorbar_label, fontsize=7)
        cbar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _done(fig)


# --------------------------------------------------------------------------------------------
# volumes
# --------------------------------------------------------------------------------------------
def slice_montage(
    volume: Any,
    *,
    n: int = 16,
    slices: Sequence[int] | None = None,
    cols: int = 4,
    hu_window: tuple[float, float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    cmap: str = "gray",
) -> Any:
    """Axial slices of a volume on a grid, in radiological orientation.

    Parameters
    ----------
    volume : np.ndarray (X, Y, Z) or ctutils.io.Volume
        RAS+ volume (HU, or [0, 1] after preprocessing).
    n : int
        Number of evenly spaced slices (first to last) when ``slices`` is not given.
    slices : sequence of int, optional
        Slice indices (along Z) to show, in this order.
    cols : int
        Panels per row.
    hu_window : (float, float), optional
        Grey-level window, e.g. ``(-1000, 400)`` HU (lung) — or give ``vmin``/``vmax``.
        Default: the volume's own range, the same for every panel.
    title : str, optional
        Figure title.
    cmap : str
        Matplotlib colour map.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per slice, titled ``"z = k"``, with "R" on the left and "L" on the right.
    """
    data, aspect = _volume_array(volume)
    chosen = _choose_slices(data.shape[2], n=n, slices=slices)
    low, high = _intensity_range([data], hu_window=hu_window, vmin=vmin, vmax=vmax)
    return _montage(data, slices=chosen, cols=cols, vmin=low, vmax=high, aspect=aspect, title=title,
                    cmap=cmap)


def overlay_montage(
    volume: Any,
    heatmap: np.ndarray,
    *,
    n: int = 16,
    slices: Sequence[int] | None = None,
    cols: int = 4,
    alpha: float = 0.4,
    heat_cmap: str = "jet",
    hu_window: tuple[float, float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = "Grad-CAM (red: strongest evidence for 'abnormal')",
    panel_size: float = OVERLAY_PANEL_INCHES,
    colorbar: bool = True,
    colorbar_label: str = HEAT_LABEL,
    contour: np.ndarray | None = None,
    contour_color: str = "white",
) -> Any:
    """A slice montage with a heatmap (e.g. :func:`ctutils.explain.grad_cam_3d`) blended on top.

    Parameters
    ----------
    volume : np.ndarray (X, Y, Z) or ctutils.io.Volume
        The volume the heatmap explains.
    heatmap : np.ndarray
        Same ``(X, Y, Z)`` shape, values in [0, 1].
    n, slices, cols, hu_window, vmin, vmax, title
        As in :func:`slice_montage`. Tip: ``slices=np.argsort(heatmap.sum(axis=(0, 1)))[-8:]``
        shows the 8 slices with the most heat.
    alpha : float
        Opacity of the heatmap.
    heat_cmap : str
        Colour map of the heatmap.
    panel_size : float
        Inches per panel (default :data:`OVERLAY_PANEL_INCHES`, 2.5). The figure is at most
        :data:`MAX_WIDTH_INCHES` (10) wide, so with many columns the panels shrink to fit
        (``cols=8``: about 1.2 in); ``cols=4`` or fewer keeps the full size.
    colorbar : bool
        Add a colour bar of the heat (0 to 1), labelled ``colorbar_label``.
    colorbar_label : str
        Its label.
    contour : np.ndarray, optional
        A mask of the same shape (bool, or fractions such as ``cache.masks`` rows: outlined at
        0.5), e.g. the lesion mask: its outline is drawn as a thin line in ``contour_color``, so
        one sees whether the heat falls on the lesions.
    contour_color : str
        Colour of that outline.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per slice (two images each: the slice and the heatmap; plus one contour set
        where the slice crosses the mask's outline), then the colour bar's axes when
        ``colorbar``.
    """
    data, aspect = _volume_array(volume)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != data.shape:
        raise ValueError(f"heatmap shape {heat.shape} differs from the volume's {data.shape}")
    outline = None
    if contour is not None:
        outline = np.asarray(contour, dtype=np.float32)
        if outline.shape != data.shape:
            raise ValueError(f"contour mask shape {outline.shape} differs from the volume's {data.shape}")
    if not float(panel_size) > 0:
        raise ValueError(f"panel_size must be > 0 inches, got {panel_size}")
    chosen = _choose_slices(data.shape[2], n=n, slices=slices)
    low, high = _intensity_range([data], hu_window=hu_window, vmin=vmin, vmax=vmax)
    n_cols = max(1, min(int(cols), len(chosen)))
    bar = _COLORBAR_INCHES if colorbar else 0.0
    panel = min(float(panel_size), (MAX_WIDTH_INCHES - bar) / n_cols)  # the height follows the width
    return _montage(data, slices=chosen, cols=cols, vmin=low, vmax=high, aspect=aspect, title=title,
                    cmap="gray", heatmap=heat, alpha=alpha, heat_cmap=heat_cmap, panel_size=panel,
                    contour=outline, contour_color=contour_color,
                    colorbar_label=colorbar_label if colorbar else None)


def plot_before_after(
    volume: Any,
    augmented: Sequence[Any],
    *,
    slice_index: int | None = None,
    cols: int = 5,
    hu_window: tuple[float, float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = "Augmentation: original and augmented copies",
) -> Any:
    """One axial slice of a volume next to the same slice of augmented copies.

    Parameters
    ----------
    volume : np.ndarray (X, Y, Z) or ctutils.io.Volume
        The original.
    augmented : sequence of arrays (X, Y, Z)
        E.g. :func:`ctutils.augment.preview_augmentations` output (tensors are converted).
    slice_index : int, optional
        Slice to show; default the middle one.
    cols, hu_window, vmin, vmax, title
        As in :func:`slice_montage`; the grey-level range is shared by all panels.

    Returns
    -------
    matplotlib.figure.Figure
        ``1 + len(augmented)`` axes: "original", "augmented 1", ...
    """
    data, aspect = _volume_array(volume)
    copies = [_volume_array(np.asarray(a), name=f"augmented[{i}]")[0] for i, a in enumerate(augmented)]
    if not copies:
        raise ValueError("augmented is empty; pass at least one augmented volume")
    for i, c in enumerate(copies):
        if c.shape != data.shape:
            raise ValueError(f"augmented[{i}] has shape {c.shape}, the original {data.shape}")
    z = data.shape[2] // 2 if slice_index is None else _choose_slices(data.shape[2], n=1, slices=[slice_index])[0]
    low, high = _intensity_range([data, *copies], hu_window=hu_window, vmin=vmin, vmax=vmax)
    panels = [data, *copies]
    cols = max(1, min(int(cols), len(panels)))
    rows = math.ceil(len(panels) / cols)
    fig = _new_figure(cols * PANEL_INCHES, rows * PANEL_INCHES * aspect + (0.3 if title else 0.0))
    for i, (ax, arr) in enumerate(zip(_grid(fig, len(panels), cols), panels)):
        _show_slice(ax, arr, z, vmin=low, vmax=high, aspect=aspect)
        ax.set_title("original" if i == 0 else f"augmented {i}", fontsize=8)
    if title:
        fig.suptitle(f"{title} (z = {z})", fontsize=10)
    return _done(fig)


def slice_viewer(
    volume: Any,
    *,
    heatmap: np.ndarray | None = None,
    z: int | None = None,
    interactive: bool | None = None,
    hu_window: tuple[float, float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    n: int = 16,
    cols: int = 4,
    title: str | None = None,
) -> Any:
    """Browse the axial slices of a volume: a slider in Jupyter, a static montage elsewhere.

    Parameters
    ----------
    volume : np.ndarray (X, Y, Z) or ctutils.io.Volume
        RAS+ volume.
    heatmap : np.ndarray, optional
        ``(X, Y, Z)`` in [0, 1] blended on top (Grad-CAM).
    z : int, optional
        First slice shown by the slider; default the middle.
    interactive : bool, optional
        ``None`` (default): the slider where a live page renders widgets (JupyterLab, Colab),
        the static montage elsewhere: in notebooks run by papermill or nbval, whose saved
        outputs would hold a dead widget, and outside Jupyter (see
        :func:`ctutils.frontend.widgets_live`). ``True`` forces the widget (needs ipywidgets),
        ``False`` the montage.
    hu_window, vmin, vmax : optional
        Grey-level range (see :func:`slice_montage`), fixed for all slices.
    n, cols, title
        Layout of the static montage.

    Returns
    -------
    ipywidgets.VBox or matplotlib.figure.Figure
        The widget (an ``IntSlider`` over z above an ``Output`` showing the slice) when
        interactive; otherwise :func:`slice_montage` (or :func:`overlay_montage`) of ``n``
        slices.
    """
    data, aspect = _volume_array(volume)
    if heatmap is not None and np.shape(heatmap) != data.shape:
        raise ValueError(f"heatmap shape {np.shape(heatmap)} differs from the volume's {data.shape}")
    if interactive is None:
        interactive = widgets_live()
    if not interactive:
        if heatmap is not None:
            return overlay_montage(volume, heatmap, n=n, cols=cols, hu_window=hu_window, vmin=vmin,
                                   vmax=vmax, title=title)
        return slice_montage(volume, n=n, cols=cols, hu_window=hu_window, vmin=vmin, vmax=vmax, title=title)

    import ipywidgets as widgets
    from IPython.display import display

    low, high = _intensity_range([data], hu_window=hu_window, vmin=vmin, vmax=vmax)
    n_slices = data.shape[2]
    start = n_slices // 2 if z is None else _choose_slices(n_slices, n=1, slices=[z])[0]
    slider = widgets.IntSlider(value=start, min=0, max=n_slices - 1, step=1, description="z",
                               continuous_update=False)
    out = widgets.Output()

    def slice_figure(k: int) -> Any:
        fig = _new_figure(3.2, 3.2 * aspect + 0.3)
        ax = fig.add_subplot(1, 1, 1)
        _show_slice(ax, data, k, vmin=low, vmax=high, aspect=aspect,
                    heatmap=None if heatmap is None else np.asarray(heatmap, dtype=np.float32))
        ax.set_title(f"{title + ': ' if title else ''}z = {k} / {n_slices - 1}", fontsize=9)
        return _done(fig)

    def draw(change: Any = None) -> None:
        with out:
            out.clear_output(wait=True)
            display(slice_figure(slider.value))

    slider.observe(draw, names="value")
    draw()
    viewer = widgets.VBox([slider, out])
    viewer.slice_figure = slice_figure  # the figure for slice k, e.g. to save it
    return viewer


def hu_histogram(
    volumes: Any,
    *,
    labels: Sequence[str] | None = None,
    bins: int = 110,
    range_hu: tuple[float, float] = (-1100.0, 1100.0),
    density: bool = True,
    log: bool = False,
    window: tuple[float, float] | None = None,
    title: str | None = "Intensity histogram",
) -> Any:
    """Histogram of voxel values (HU) of one or several volumes, as step lines on one axes.

    Parameters
    ----------
    volumes : array, Volume, or a sequence of them
        Voxel values in HU (any shape).
    labels : sequence of str, optional
        Legend entries, one per volume.
    bins : int
        Number of bins over ``range_hu``.
    range_hu : (float, float)
        HU range shown; values outside are not counted.
    density : bool
        Fraction of voxels per HU (comparable across volume sizes) instead of counts.
    log : bool
        Logarithmic y axis.
    window : (float, float), optional
        Shade an HU window, e.g. the preprocessing window ``(-1000, 400)``.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes.
    """
    if isinstance(volumes, np.ndarray) or hasattr(volumes, "data"):
        items = [volumes]
    else:
        items = list(volumes)
    if not items:
        raise ValueError("volumes is empty")
    if labels is not None and len(labels) != len(items):
        raise ValueError(f"got {len(labels)} labels for {len(items)} volumes")
    lo, hi = (float(v) for v in range_hu)
    if not hi > lo:
        raise ValueError(f"range_hu must be increasing, got {range_hu}")
    fig = _new_figure(5.0, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    for i, item in enumerate(items):
        values = np.asarray(getattr(item, "data", item)).ravel()
        counts, edges = np.histogram(values, bins=int(bins), range=(lo, hi), density=density)
        ax.stairs(counts, edges, label=None if labels is None else labels[i])
    if window is not None:
        ax.axvspan(float(window[0]), float(window[1]), color="grey", alpha=0.15, label="window")
    ax.set_xlabel("Hounsfield units (HU)")
    ax.set_ylabel("fraction of voxels per HU" if density else "voxels")
    if log:
        ax.set_yscale("log")
    if labels is not None or window is not None:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _done(fig)


# --------------------------------------------------------------------------------------------
# training and evaluation
# --------------------------------------------------------------------------------------------
def _read_history(history: Any) -> dict[str, list[float]]:
    if hasattr(history, "history"):  # keras.callbacks.History
        history = history.history
    if isinstance(history, (str, os.PathLike)):
        path = Path(history)
        if not path.is_file():
            raise ValueError(f"{path}: history file not found")
        if path.suffix == ".json":
            history = json.loads(path.read_text())
        elif path.suffix == ".csv":
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            if not rows:
                raise ValueError(f"{path}: history file has no epochs")
            history = {key: [r[key] for r in rows] for key in rows[0]}
        else:
            raise ValueError(f"{path}: expected a .json or .csv history file")
    if not isinstance(history, Mapping) or not history:
        raise ValueError(
            f"history must be a non-empty dict of lists, a History or a file, got {type(history).__name__}"
        )
    def value(v: Any) -> float:
        return float("nan") if v is None or v == "" else float(v)  # missing epoch value: a gap

    return {str(k): [value(v) for v in vals] for k, vals in history.items()}


def _chance_label(value: float) -> str:
    return "chance: ln 2" if math.isclose(value, math.log(2.0), abs_tol=1e-9) else f"chance: {value:g}"


def plot_history(
    history: Any,
    *,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    chance: Mapping[str, float] | None = None,
    best_epoch: int | None = None,
) -> Any:
    """Training curves: one axes per metric, train and validation, with the chance level.

    Parameters
    ----------
    history : dict, keras History, or path to history.json / history.csv
        ``{"loss": [...], "val_loss": [...], "auc": [...], ...}`` (one value per epoch).
    metrics : sequence of str, optional
        Base names to plot (e.g. ``["loss", "auc"]``); default every metric in the history
        except ``epoch`` and the learning rate, loss first.
    title : str, optional
        Figure title.
    chance : mapping of str to float, optional
        Chance level per metric, drawn as a dashed grey horizontal line labelled
        ``"chance: <value>"`` in the legend. None: :data:`CHANCE_LEVELS` (ln 2 ≈ 0.693 for the
        binary cross-entropy, labelled ``"chance: ln 2"``; 0.5 for ROC-AUC and accuracy, the
        latter for balanced classes); ``{}``: no line.
    best_epoch : int, optional
        Mark this epoch (1-based, e.g. the one whose weights were kept) with a dotted vertical
        line labelled ``"best epoch (k)"``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric, x = epoch (1-based), y labelled with a readable name
        (:data:`HISTORY_LABELS`: "binary cross-entropy" for loss, "ROC-AUC" for auc, "accuracy"
        for acc, else the key). Lines in order: train, val, chance, best epoch (those present).

    Raises
    ------
    ValueError
        For an unreadable history, an unknown metric, a non-finite chance level, or a
        ``best_epoch`` outside 1 … number of epochs.
    """
    hist = _read_history(history)
    skip = {"epoch", "lr", "learning_rate"}
    if metrics is None:
        names = [k for k in hist if not k.startswith("val_") and k not in skip]
        names.sort(key=lambda k: k != "loss")  # stable: loss first, then file order
    else:
        names = list(metrics)
        missing = [m for m in names if m not in hist and f"val_{m}" not in hist]
        if missing:
            raise ValueError(f"metric(s) {missing} not in the history (has {sorted(hist)})")
    if not names:
        raise ValueError(f"no metric to plot in the history (has {sorted(hist)})")
    levels = dict(CHANCE_LEVELS if chance is None else chance)
    for key, value in levels.items():
        if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(float(value)):
            raise ValueError(f"chance[{key!r}] must be a finite number, got {value!r}")
    n_epochs = max(len(v) for v in hist.values())
    if best_epoch is not None and (isinstance(best_epoch, bool) or int(best_epoch) != best_epoch
                                   or not 1 <= best_epoch <= n_epochs):
        raise ValueError(f"best_epoch must be an epoch number in 1..{n_epochs}, got {best_epoch!r}")
    fig = _new_figure(3.2 * len(names), 2.6)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for key, label in ((name, "train"), (f"val_{name}", "val")):
            if key in hist:
                values = hist[key]
                ax.plot(np.arange(1, len(values) + 1), values, label=label)
        if name in levels:
            level = float(levels[name])
            ax.axhline(level, ls="--", color="grey", lw=1, label=_chance_label(level))
        if best_epoch is not None:
            ax.axvline(int(best_epoch), ls=":", color="grey", lw=1, label=f"best epoch ({int(best_epoch)})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(HISTORY_LABELS.get(name, name))
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _done(fig)


def _axes_or_new(ax: Any, width: float = 3.6, height: float = 3.4) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig = _new_figure(width, height)
    return fig, fig.add_subplot(1, 1, 1)


def plot_roc(
    y_true: Any,
    y_prob: Any,
    *,
    ax: Any = None,
    label: str = "model",
    threshold: float | None = None,
    title: str | None = "ROC curve",
) -> Any:
    """ROC curve (scikit-learn's ``RocCurveDisplay``) with the AUC in the legend.

    Parameters
    ----------
    y_true, y_prob : array-like, shape (N,)
        Labels (0/1) and P(abnormal).
    ax : matplotlib Axes, optional
        Draw into it (e.g. to overlay the model and the baseline); default a new figure.
    label : str
        Legend name.
    threshold : float, optional
        Mark the operating point of this threshold.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.metrics import RocCurveDisplay

    from ctutils.evaluation import binary_metrics

    m = binary_metrics(y_true, y_prob, threshold=0.5 if threshold is None else threshold)
    fig, ax = _axes_or_new(ax)
    RocCurveDisplay.from_predictions(np.asarray(y_true), np.asarray(y_prob), ax=ax, name=label,
                                     plot_chance_level=not ax.lines)
    if threshold is not None:
        ax.plot(1 - m["specificity"], m["sensitivity"], "o", color="black", markersize=5,
                label=f"threshold {threshold:.2f}")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("1 − specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    if title:
        ax.set_title(title, fontsize=10)
    return _done(fig)


def plot_pr(
    y_true: Any,
    y_prob: Any,
    *,
    ax: Any = None,
    label: str = "model",
    title: str | None = "Precision–recall curve",
) -> Any:
    """Precision–recall curve (``PrecisionRecallDisplay``) with average precision and prevalence.

    Parameters are as in :func:`plot_roc`. Returns a Figure.
    """
    from sklearn.metrics import PrecisionRecallDisplay

    from ctutils.evaluation import check_labels_probs

    yt, yp = check_labels_probs(y_true, y_prob)
    fig, ax = _axes_or_new(ax)
    PrecisionRecallDisplay.from_predictions(yt, yp, ax=ax, name=label, plot_chance_level=not ax.lines)
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision")
    if title:
        ax.set_title(title, fontsize=10)
    return _done(fig)


def plot_confusion(
    y_true: Any,
    y_prob: Any,
    *,
    threshold: float = 0.5,
    class_names: Sequence[str] = ("normal", "abnormal"),
    normalize: str | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Confusion matrix at a threshold (``ConfusionMatrixDisplay``): rows truth, columns prediction.

    Parameters
    ----------
    y_true, y_prob : array-like, shape (N,)
        Labels (0/1) and P(abnormal); a sample is predicted abnormal when ``y_prob >= threshold``.
    threshold : float
        Decision threshold.
    class_names : sequence of 2 str
        Tick labels.
    normalize : {None, "true", "pred", "all"}
        As in :func:`sklearn.metrics.confusion_matrix`.
    ax, title : optional
        As in :func:`plot_roc`.

    Returns
    -------
    matplotlib.figure.Figure
        One axes (no colour bar).
    """
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    from ctutils.evaluation import check_labels_probs, check_threshold

    yt, yp = check_labels_probs(y_true, y_prob)
    threshold = check_threshold(threshold)
    cm = confusion_matrix(yt, (yp >= threshold).astype(int), labels=[0, 1], normalize=normalize)
    fig, ax = _axes_or_new(ax, 3.6, 3.2)
    ConfusionMatrixDisplay(cm, display_labels=list(class_names)).plot(
        ax=ax, colorbar=False, cmap="Blues", values_format=".2f" if normalize else "d"
    )
    ax.set_title(title or f"Confusion matrix (threshold {threshold:.2f})", fontsize=10)
    return _done(fig)


def plot_calibration(y_true: Any, y_prob: Any, *, n_bins: int = 10, title: str | None = None) -> Any:
    """Reliability diagram with the expected calibration error in the title.

    Top: fraction of abnormal scans against mean predicted probability per bin (the diagonal is
    perfect calibration). Bottom: number of scans per bin.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes (reliability, counts).
    """
    from ctutils.evaluation import calibration

    table, ece = calibration(y_true, y_prob, n_bins=n_bins)
    fig = _new_figure(3.6, 4.2)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    filled = table["count"] > 0
    top.plot(table["mean_prob"][filled], table["frac_positive"][filled], "o-", label="model")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("fraction abnormal")
    top.legend(fontsize=8, loc="upper left")
    top.set_title(f"{title + ': ' if title else ''}reliability (ECE = {ece:.3f})", fontsize=10)
    widths = table["bin_upper"] - table["bin_lower"]
    bottom.bar(table["bin_lower"], table["count"], width=widths, align="edge", edgecolor="white")
    bottom.set_xlabel("predicted P(abnormal)")
    bottom.set_ylabel("scans")
    return _done(fig)


def mistakes_gallery(
    volumes: Any,
    y_true: Any,
    y_prob: Any,
    *,
    indices: Sequence[int] | None = None,
    k: int = 6,
    threshold: float = 0.5,
    class_names: Sequence[str] = ("normal", "abnormal"),
    paths: Sequence[Any] | None = None,
    captions: Sequence[str] | None = None,
    slice_index: int | None = None,
    cols: int = 3,
    hu_window: tuple[float, float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = "Most confident mistakes",
) -> Any:
    """The middle slice of the scans the model got wrong most confidently.

    Parameters
    ----------
    volumes : array (N, X, Y, Z) or sequence of (X, Y, Z)
        Aligned with ``y_true`` (e.g. ``cache.volumes[cache.indices("test")]``; only the shown
        rows are read from a memmap).
    y_true, y_prob : array-like, shape (N,)
        Labels (0/1) and P(abnormal).
    indices : sequence of int, optional
        Which samples to show; default :func:`ctutils.evaluation.most_confident_mistakes`.
    k, threshold : int, float
        Passed to ``most_confident_mistakes``.
    class_names : sequence of 2 str
        Names for the titles.
    paths : sequence, optional
        Source files; their names are added to the titles.
    captions : sequence of str, optional
        One more line per sample for its title, aligned with ``y_true`` (e.g.
        ``"CT-2, 31 % involved"`` from ``synthetic.json``).
    slice_index : int, optional
        Slice shown; default the middle one.
    cols, hu_window, vmin, vmax, title
        As in :func:`slice_montage` (the grey range defaults to the shown volumes' range).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per shown scan, titled with the truth and P(abnormal) (and its caption); a
        single axes saying so when there is no mistake.
    """
    from ctutils.evaluation import check_labels_probs, most_confident_mistakes

    yt, yp = check_labels_probs(y_true, y_prob)
    if len(volumes) != yt.size:
        raise ValueError(f"got {len(volumes)} volumes for {yt.size} labels")
    if captions is not None and (isinstance(captions, str) or len(captions) != yt.size):
        got = "a single string" if isinstance(captions, str) else f"{len(captions)} captions"
        raise ValueError(f"captions: got {got} for {yt.size} labels; give one per sample")
    if indices is None:
        chosen = [int(i) for i in most_confident_mistakes(yt, yp, k=k, threshold=threshold)]
    else:
        chosen = [int(i) for i in indices]
        bad = [i for i in chosen if not 0 <= i < yt.size]
        if bad:
            raise ValueError(f"indices {bad} out of range for {yt.size} samples")
    if not chosen:
        fig = _new_figure(3.0, 1.2)
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, f"No mistakes at threshold {threshold:.2f}", ha="center", va="center")
        ax.set_axis_off()
        return _done(fig)
    arrays = [_volume_array(volumes[i], name=f"volumes[{i}]") for i in chosen]
    low, high = _intensity_range([a for a, _ in arrays], hu_window=hu_window, vmin=vmin, vmax=vmax)
    aspect = arrays[0][1]
    n_slices = min(a.shape[2] for a, _ in arrays)
    z_fixed = None if slice_index is None else _choose_slices(n_slices, n=1, slices=[slice_index])[0]
    cols = max(1, min(int(cols), len(chosen)))
    rows = math.ceil(len(chosen) / cols)
    # Captions are wrapped to the panel's width (about 36 characters at 7 pt in 2.2 in).
    wrapped = {i: textwrap.fill(str(captions[i]), 36) for i in chosen} if captions is not None else {}
    extra = max((w.count("\n") + 1 for w in wrapped.values()), default=0) * 0.13
    fig = _new_figure(cols * 2.2, rows * (2.4 * aspect + extra) + (0.3 if title else 0.0))
    for ax, i, (data, asp) in zip(_grid(fig, len(chosen), cols), chosen, arrays):
        z = data.shape[2] // 2 if z_fixed is None else z_fixed
        _show_slice(ax, data, z, vmin=low, vmax=high, aspect=asp)
        name = f"{Path(str(paths[i])).name}\n" if paths is not None else f"#{i} "
        caption = f"\n{wrapped[i]}" if captions is not None else ""
        ax.set_title(f"{name}true {class_names[yt[i]]}, P({class_names[1]}) = {yp[i]:.2f}{caption}",
                     fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _done(fig)
