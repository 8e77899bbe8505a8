"""Tests for ctutils.plotting: figures, axes counts, and radiological orientation of the pixels."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ctutils import plotting  # noqa: E402
from ctutils.orientation import display_slice  # noqa: E402

X, Y, Z = 10, 8, 6


def _marked_volume() -> np.ndarray:
    """RAS+ volume: a marker on the patient's right (x = X-1) and one anterior (y = Y-1)."""
    v = np.zeros((X, Y, Z), np.float32)
    v[X - 1, Y // 2, :] = 1.0  # patient's right, mid anterior-posterior
    v[X // 2, Y - 1, :] = 2.0  # anterior, mid left-right
    return v


def _image(ax) -> np.ndarray:
    return np.asarray(ax.images[0].get_array())


def _assert_radiological(ax) -> None:
    img = _image(ax)  # rows = display rows, columns = display columns
    assert img.shape == (Y, X)
    rows, cols = np.nonzero(img == 1.0)  # patient's right → viewer's left
    assert set(cols.tolist()) == {0}
    rows, cols = np.nonzero(img == 2.0)  # anterior → top
    assert set(rows.tolist()) == {0}
    texts = {t.get_text(): t.get_position()[0] for t in ax.texts}
    assert texts["R"] < 0.5 < texts["L"]


def test_side_markers_are_large_and_outlined():
    fig = plotting.slice_montage(_marked_volume(), n=2)
    for ax in fig.axes:
        markers = {t.get_text(): t for t in ax.texts}
        assert set(markers) == {"R", "L"}
        for text in markers.values():
            assert text.get_fontsize() >= 12 and text.get_fontweight() == "bold"
            assert text.get_color() == "white"
            [stroke] = text.get_path_effects()  # a black outline keeps white legible on bright bone
            assert stroke._gc == {"linewidth": 3.0, "foreground": "black"}


def test_slice_montage_axes_and_orientation():
    v = _marked_volume()
    fig = plotting.slice_montage(v, n=4, cols=3, title="t")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # 2 rows × 3 columns, the 2 unused cells not created
    assert [ax.get_title() for ax in fig.axes] == ["z = 0", "z = 2", "z = 3", "z = 5"]
    for ax in fig.axes:
        _assert_radiological(ax)
    assert plt.get_fignums() == []  # closed in pyplot: shown once in notebooks, no leak
    w, h = fig.get_size_inches()
    assert w <= plotting.MAX_WIDTH_INCHES and h < 8


def test_slice_montage_explicit_slices_and_window():
    v = _marked_volume()
    fig = plotting.slice_montage(v, slices=[5, 1], hu_window=(-1.0, 3.0))
    assert [ax.get_title() for ax in fig.axes] == ["z = 5", "z = 1"]
    assert fig.axes[0].images[0].get_clim() == (-1.0, 3.0)
    np.testing.assert_array_equal(_image(fig.axes[1]), display_slice(v, 1))


def test_slice_montage_accepts_a_volume_object(tmp_path):
    from ctutils.io import load_volume, save_volume

    data = np.zeros((X, Y, Z), np.int16)
    data[0, Y // 2, :] = 1000  # stored L, P, S: index 0 of axis 0 is the patient's RIGHT
    path = tmp_path / "lps.nii.gz"
    save_volume(path, data, np.diag([-1.0, -1.0, 2.0, 1.0]))
    fig = plotting.slice_montage(load_volume(path), slices=[0])
    img = _image(fig.axes[0])
    assert np.nonzero(img == 1000)[1].tolist() == [0]  # still on the viewer's left


def test_bad_slices_and_window():
    v = _marked_volume()
    with pytest.raises(ValueError, match="within 0..5"):
        plotting.slice_montage(v, slices=[6])
    with pytest.raises(ValueError, match="either hu_window or vmin/vmax"):
        plotting.slice_montage(v, hu_window=(0, 1), vmin=0)
    with pytest.raises(ValueError, match=r"expected an \(X, Y, Z\) volume"):
        plotting.slice_montage(np.zeros((4, 4)))


def test_overlay_montage():
    v = _marked_volume()
    heat = np.zeros_like(v)
    heat[X - 1, :, :] = 1.0  # heat on the patient's right
    fig = plotting.overlay_montage(v, heat, n=3)
    assert len(fig.axes) == 4  # three slices and the colour bar
    *panels, bar = fig.axes
    for ax in panels:
        assert len(ax.images) == 2
        overlay = np.asarray(ax.images[1].get_array())
        assert set(np.nonzero(overlay == 1.0)[1].tolist()) == {0}
    assert bar.get_label() == "<colorbar>"
    assert bar.get_ylabel() == "Grad-CAM heat\n(fraction of the maximum)"
    assert bar.get_ylim() == (0.0, 1.0)
    with pytest.raises(ValueError, match="heatmap shape"):
        plotting.overlay_montage(v, heat[:, :, :2])


def test_overlay_montage_panel_size_and_no_colorbar():
    v = _marked_volume()
    heat = np.zeros_like(v)
    small = plotting.overlay_montage(v, heat, n=2, cols=2, colorbar=False, panel_size=1.0, title=None)
    assert len(small.axes) == 2  # no colour bar: the former layout
    big = plotting.overlay_montage(v, heat, n=2, cols=2, colorbar=False, title=None)  # default 2.5 in
    assert small.get_size_inches().tolist() == pytest.approx([2.0, 1.0])  # 2 columns × 1 in, 1 row
    assert big.get_size_inches().tolist() == pytest.approx([2 * plotting.OVERLAY_PANEL_INCHES,
                                                            plotting.OVERLAY_PANEL_INCHES])
    assert plotting.OVERLAY_PANEL_INCHES > plotting.PANEL_INCHES
    # eight columns cannot be 2.5 in each within 10 in: panels shrink, and the height with them
    v8 = np.zeros((X, X, 8), np.float32)
    wide = plotting.overlay_montage(v8, v8, n=8, cols=8, colorbar=False, title=None)
    assert wide.get_size_inches().tolist() == pytest.approx([plotting.MAX_WIDTH_INCHES, plotting.MAX_WIDTH_INCHES / 8])
    with pytest.raises(ValueError, match="panel_size must be > 0"):
        plotting.overlay_montage(v, heat, panel_size=0)


def test_overlay_montage_outlines_a_mask():
    v = _marked_volume()
    heat = np.zeros_like(v)
    mask = np.zeros((X, Y, Z), np.float16)
    mask[6:9, 2:5, 1:3] = 1.0  # on the patient's right half, slices 1 and 2 only
    fig = plotting.overlay_montage(v, heat, slices=[0, 1, 2], contour=mask, contour_color="cyan")
    panels = fig.axes[:3]
    assert [len(ax.collections) for ax in panels] == [0, 1, 1]  # no outline where the mask is absent
    outline = panels[1].collections[0]
    assert matplotlib.colors.to_hex(outline.get_edgecolor()[0]) == "#00ffff"
    vertices = np.concatenate([path.vertices for path in outline.get_paths()])
    rows, cols = np.nonzero(display_slice(mask, 1) >= 0.5)  # where the mask is drawn on screen
    assert vertices[:, 0].min() >= cols.min() - 0.5 and vertices[:, 0].max() <= cols.max() + 0.5
    assert vertices[:, 1].min() >= rows.min() - 0.5 and vertices[:, 1].max() <= rows.max() + 0.5
    assert cols.max() < X / 2  # the patient's right lies on the viewer's left, outline included
    with pytest.raises(ValueError, match="contour mask shape"):
        plotting.overlay_montage(v, heat, contour=mask[:, :, :2])


def test_plot_before_after():
    v = _marked_volume()
    flipped = v[::-1].copy()  # a left-right flip moves the marker to the viewer's right
    fig = plotting.plot_before_after(v, [flipped, v], slice_index=2)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["original", "augmented 1", "augmented 2"]
    _assert_radiological(fig.axes[0])
    assert set(np.nonzero(_image(fig.axes[1]) == 1.0)[1].tolist()) == {X - 1}
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_before_after(v, [])


def test_slice_viewer_static_and_interactive():
    v = _marked_volume()
    fig = plotting.slice_viewer(v, interactive=False, n=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert isinstance(plotting.slice_viewer(v), Figure)  # not in a Jupyter kernel → static
    pytest.importorskip("ipywidgets")
    viewer = plotting.slice_viewer(v, interactive=True, z=1)
    slider = viewer.children[0]
    assert (slider.min, slider.max, slider.value) == (0, Z - 1, 1)
    slider.value = 4  # redraws without error
    one = viewer.slice_figure(3)
    assert len(one.axes) == 1
    _assert_radiological(one.axes[0])


def test_hu_histogram():
    rng = np.random.default_rng(0)
    a = rng.normal(-800, 50, size=1000)
    b = rng.normal(40, 30, size=500)
    fig = plotting.hu_histogram([a, b], labels=["lung", "tissue"], bins=22, range_hu=(-1100, 1100))
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    steps = [p for p in ax.patches if type(p).__name__ == "StepPatch"]
    assert len(steps) == 2
    # density: each histogram integrates to 1 over the range (100 HU bins)
    values = steps[0].get_data().values
    assert values.sum() * 100 == pytest.approx(1.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lung", "tissue"]
    with pytest.raises(ValueError, match="2 labels for 1 volumes"):
        plotting.hu_histogram(a, labels=["x", "y"])


def test_plot_history_from_dict_json_and_csv(tmp_path):
    history = {"epoch": [1, 2, 3], "loss": [0.7, 0.6, 0.5], "val_loss": [0.7, 0.65, None],
               "auc": [0.5, 0.6, 0.7], "val_auc": [0.5, 0.55, 0.6], "learning_rate": [1e-4] * 3}
    fig = plotting.plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "auc"]
    assert [line.get_label() for line in fig.axes[0].lines][:2] == ["train", "val"]
    assert fig.axes[0].lines[0].get_xdata().tolist() == [1, 2, 3]
    (tmp_path / "history.json").write_text(json.dumps(history))
    assert len(plotting.plot_history(tmp_path / "history.json").axes) == 2
    rows = ["epoch,auc,learning_rate,loss,val_auc,val_loss", "1,0.5,0.0001,0.7,0.5,0.7", "2,0.6,0.0001,0.6,0.55,"]
    (tmp_path / "history.csv").write_text("\n".join(rows) + "\n")
    fig = plotting.plot_history(tmp_path / "history.csv", metrics=["auc"])
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="not in the history"):
        plotting.plot_history(history, metrics=["f1"])
    with pytest.raises(ValueError, match="not found"):
        plotting.plot_history(tmp_path / "missing.json")


def _lines(ax) -> dict[str, object]:
    return {line.get_label(): line for line in ax.lines}


def test_plot_history_axis_labels_and_chance_lines():
    history = {"loss": [0.7, 0.6, 0.5], "val_loss": [0.7, 0.65, 0.6], "auc": [0.5, 0.6, 0.7],
               "accuracy": [0.5, 0.6, 0.7], "f1": [0.4, 0.5, 0.6]}
    fig = plotting.plot_history(history)
    loss, auc, acc, f1 = fig.axes
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch"] * 4
    assert [ax.get_ylabel() for ax in fig.axes] == ["binary cross-entropy", "ROC-AUC", "accuracy", "f1"]
    chance = _lines(loss)["chance: ln 2"]
    assert chance.get_ydata()[0] == pytest.approx(0.6931, abs=1e-4)
    assert chance.get_linestyle() == "--" and matplotlib.colors.to_hex(chance.get_color()) == "#808080"
    for ax in (auc, acc):
        assert list(_lines(ax)) == ["train", "chance: 0.5"]
        assert _lines(ax)["chance: 0.5"].get_ydata()[0] == 0.5
    assert list(_lines(f1)) == ["train"]  # no known chance level for f1
    # the legend names the chance line
    assert "chance: ln 2" in [t.get_text() for t in loss.get_legend().get_texts()]


def test_plot_history_chance_override_and_best_epoch():
    history = {"loss": [0.7, 0.6, 0.5], "val_loss": [0.7, 0.65, 0.6], "auc": [0.5, 0.6, 0.7]}
    fig = plotting.plot_history(history, chance={})
    assert [list(_lines(ax)) for ax in fig.axes] == [["train", "val"], ["train"]]
    fig = plotting.plot_history(history, chance={"auc": 0.6}, best_epoch=2)
    loss, auc = fig.axes
    assert list(_lines(loss)) == ["train", "val", "best epoch (2)"]
    assert _lines(auc)["chance: 0.6"].get_ydata()[0] == 0.6
    best = _lines(auc)["best epoch (2)"]
    assert best.get_xdata()[0] == 2 and best.get_linestyle() == ":"
    with pytest.raises(ValueError, match=r"best_epoch must be an epoch number in 1..3, got 4"):
        plotting.plot_history(history, best_epoch=4)
    with pytest.raises(ValueError, match=r"chance\['auc'\] must be a finite number"):
        plotting.plot_history(history, chance={"auc": float("nan")})


Y_TRUE = np.array([0, 0, 0, 0, 0, 1, 1, 1])
Y_PROB = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.4, 0.8, 0.9])


def test_roc_and_pr():
    fig = plotting.plot_roc(Y_TRUE, Y_PROB, threshold=0.5)
    assert len(fig.axes) == 1
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("AUC = 0.87" in label for label in labels)  # 13 / 15
    # operating point at 0.5: FPR = 2/5, TPR = 2/3
    point = [line for line in fig.axes[0].lines if line.get_label() == "threshold 0.50"][0]
    assert point.get_xdata()[0] == pytest.approx(0.4) and point.get_ydata()[0] == pytest.approx(2 / 3)
    # overlay a second curve on the same axes
    fig2 = plotting.plot_roc(Y_TRUE, Y_PROB[::-1], ax=fig.axes[0], label="baseline")
    assert fig2 is fig and len(fig.axes) == 1
    fig = plotting.plot_pr(Y_TRUE, Y_PROB)
    assert len(fig.axes) == 1
    assert any("AP = 0.87" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_confusion_matrix_values():
    fig = plotting.plot_confusion(Y_TRUE, Y_PROB, threshold=0.5)
    assert len(fig.axes) == 1  # no colour bar
    cells = sorted(t.get_text() for t in fig.axes[0].texts)
    assert cells == ["1", "2", "2", "3"]  # TN 3, FP 2, FN 1, TP 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["normal", "abnormal"]


def test_calibration_plot_has_ece_in_title():
    fig = plotting.plot_calibration([0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.9, 1.0], n_bins=4)
    assert len(fig.axes) == 2
    assert "ECE = 0.220" in fig.axes[0].get_title()  # hand-computed in test_evaluation.py
    assert [p.get_height() for p in fig.axes[1].patches] == [2, 1, 0, 2]


def test_mistakes_gallery():
    v = np.stack([_marked_volume() * (i + 1) for i in range(len(Y_TRUE))])
    # mistakes at 0.5: index 4 (FP .7), 3 (FP .6), 5 (FN, 1 - .4 = .6): ties keep index order
    fig = plotting.mistakes_gallery(v, Y_TRUE, Y_PROB, k=3, paths=[f"/d/s{i}.nii.gz" for i in range(8)])
    assert len(fig.axes) == 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("s4.nii.gz") and "true normal, P(abnormal) = 0.70" in titles[0]
    assert titles[1].startswith("s3.nii.gz") and titles[2].startswith("s5.nii.gz")
    np.testing.assert_array_equal(_image(fig.axes[0]), display_slice(v[4], Z // 2))
    captions = [f"CT-{i % 4}, {10 * i} % involved" for i in range(8)]
    fig = plotting.mistakes_gallery(v, Y_TRUE, Y_PROB, k=3, captions=captions)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "#4 true normal, P(abnormal) = 0.70\nCT-0, 40 % involved"
    assert titles[2].endswith("\nCT-1, 50 % involved")  # index 5: captions follow y_true, not the panel order
    long = ["CT-0; expiratory, contrast, dependent density, atelectasis, nodules, scars, sharp kernel, motion"] * 8
    fig = plotting.mistakes_gallery(v, Y_TRUE, Y_PROB, k=3, captions=long)
    title = fig.axes[0].get_title()
    assert all(len(line) <= 36 for line in title.split("\n")[1:]), title  # wrapped to the panel's width
    assert title.split("\n", 1)[1].replace("\n", " ") == long[0]
    with pytest.raises(ValueError, match="captions: got 2 captions for 8 labels"):
        plotting.mistakes_gallery(v, Y_TRUE, Y_PROB, captions=captions[:2])
    with pytest.raises(ValueError, match="captions: got a single string"):
        plotting.mistakes_gallery(v, Y_TRUE, Y_PROB, captions="CT-2")
    fig = plotting.mistakes_gallery(v, Y_TRUE, Y_TRUE * 0.8 + 0.1)
    assert len(fig.axes) == 1 and "No mistakes" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="got 2 volumes for 8 labels"):
        plotting.mistakes_gallery(v[:2], Y_TRUE, Y_PROB)
