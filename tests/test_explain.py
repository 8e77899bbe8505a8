"""Tests for ctutils.explain: Grad-CAM on tiny 3-D CNNs whose behaviour is known by construction,
and its scores against lesion masks computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ctutils.explain import (  # noqa: E402
    conv_layer_names,
    grad_cam_3d,
    lesion_heat_scores,
    score_grad_cam,
    summarize_heat_scores,
)


def _detector_model(head_weights):
    """Pool 2 → Conv3D(1×1×1) with two channels → global average → Dense(1, sigmoid).

    Channel 0 = ReLU(x − 0.5) fires on bright voxels, channel 1 = ReLU(0.5 − x) on dark ones.
    ``head_weights`` (w0, w1) choose which channel drives P(abnormal). The feature map is
    4 × 4 × 4 for an 8 × 8 × 8 input, so the heatmap has to be upsampled.
    """
    inputs = keras.Input((8, 8, 8, 1))
    x = keras.layers.MaxPooling3D(2)(inputs)
    x = keras.layers.Conv3D(2, 1, activation="relu", name="detect")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("detect").set_weights(
        [np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 1, 2), np.array([-0.5, 0.5], np.float32)]
    )
    model.get_layer("head").set_weights([np.array(head_weights, np.float32).reshape(2, 1), np.zeros(1, np.float32)])
    return model


def _volume():
    """Dim background 0.2; a bright 2×2×2 blob (1.0) in the first octant."""
    v = np.full((8, 8, 8), 0.2, np.float32)
    v[0:2, 0:2, 0:2] = 1.0
    return v


def test_heatmap_follows_the_channel_that_drives_the_output():
    v = _volume()
    original = v.copy()
    # Output driven by the bright-blob detector: the blob lights up, the background stays 0.
    heat = grad_cam_3d(_detector_model([3.0, 0.0]), v)
    assert heat.shape == v.shape and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert heat[0, 0, 0] == pytest.approx(1.0)
    assert heat[4:, 4:, 4:].max() == 0.0  # far octant: no evidence
    assert heat[0:2, 0:2, 0:2].mean() > 5 * heat[2:, 2:, 2:].mean()
    np.testing.assert_array_equal(v, original)  # the caller's array is untouched

    # Output driven by the background detector: now the blob is the one place without heat.
    heat = grad_cam_3d(_detector_model([0.0, 3.0]), v)
    assert heat[0, 0, 0] == 0.0
    assert heat[6, 6, 6] == pytest.approx(1.0)


def test_negative_evidence_is_clipped_to_zero():
    # The bright detector pushes P(abnormal) down (negative weight) and is the only active
    # channel at the blob: ReLU leaves no heat anywhere → an all-zero map, not NaN.
    v = np.full((8, 8, 8), 0.5, np.float32)  # nothing for the dark detector: ReLU(0.5 - 0.5) = 0
    v[0:2, 0:2, 0:2] = 1.0
    heat = grad_cam_3d(_detector_model([-3.0, 0.0]), v)
    assert np.all(heat == 0.0)


def test_accepts_channel_axis_and_default_layer_is_last_conv():
    inputs = keras.Input((8, 8, 8, 1))
    x = keras.layers.Conv3D(2, 3, padding="same", name="first")(inputs)
    x = keras.layers.Conv3D(2, 3, padding="valid", name="second")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling3D()(x))
    model = keras.Model(inputs, outputs)
    assert conv_layer_names(model) == ["first", "second"]
    rng = np.random.default_rng(0)
    v = rng.uniform(size=(8, 8, 8, 1)).astype(np.float32)
    heat = grad_cam_3d(model, v)  # "second": 6 × 6 × 6 map upsampled to 8 × 8 × 8
    assert heat.shape == (8, 8, 8)
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    heat_first = grad_cam_3d(model, v, layer_name="first")
    assert heat_first.shape == (8, 8, 8)
    assert heat_first.std() > 0  # not constant


def test_bad_input():
    model = _detector_model([1.0, 0.0])
    with pytest.raises(ValueError, match="does not fit the model's input"):
        grad_cam_3d(model, np.zeros((8, 8, 4), np.float32))
    with pytest.raises(ValueError, match="expected one"):
        grad_cam_3d(model, np.zeros((1, 8, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        grad_cam_3d(model, _volume(), layer_name="nope")
    with pytest.raises(ValueError, match=r"needs a \(B, X, Y, Z, C\) feature map"):
        grad_cam_3d(model, _volume(), layer_name="head")
    with pytest.raises(ValueError, match="class_index 1 out of range"):
        grad_cam_3d(model, _volume(), class_index=1)
    inputs = keras.Input((8, 8, 8, 1))
    no_conv = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling3D()(inputs)))
    with pytest.raises(ValueError, match="no Conv3D layer"):
        grad_cam_3d(no_conv, _volume())


# --------------------------------------------------------------------------------------------
# scores against lesion masks
# --------------------------------------------------------------------------------------------
def _line(n_total=20, lung=(0, 10), lesion=(2, 4)):
    """A 1-D "volume" (n, 1, 1): lung voxels lung[0]..lung[1]-1, lesion voxels lesion[0]..lesion[1]-1."""
    lung_mask = np.zeros((n_total, 1, 1), bool)
    lung_mask[lung[0]:lung[1]] = True
    lesion_mask = np.zeros_like(lung_mask)
    lesion_mask[lesion[0]:lesion[1]] = True
    return lesion_mask, lung_mask


def test_all_heat_on_a_2_voxel_lesion_of_a_10_voxel_lung():
    lesion, lung = _line()
    heat = lesion.astype(np.float32)
    s = lesion_heat_scores(heat, lesion, lung)
    assert s["heat_in_lesions"] == 1.0 and s["lesion_share"] == 0.2
    assert s["enrichment"] == pytest.approx(5.0) and s["heat_in_lungs"] == 1.0
    assert s["pointing_hit"] is True and s["pointing_share"] == 1.0 and s["n_max"] == 2
    assert (s["n_lung"], s["n_lesion"], s["note"]) == (10, 2, None)


def test_uniform_heat_has_enrichment_one_and_ties_count_by_share():
    lesion, lung = _line()
    heat = np.full(lesion.shape, 0.5, np.float32)  # 20 voxels, 10 of them lung
    s = lesion_heat_scores(heat, lesion, lung)
    assert s["heat_in_lesions"] == pytest.approx(2 * 0.5 / (10 * 0.5))  # 0.2
    assert s["enrichment"] == pytest.approx(1.0)
    assert s["heat_in_lungs"] == pytest.approx(0.5)
    # every voxel ties for the maximum; 2 of the 20 are lesion → share 0.1 → a miss
    assert s["n_max"] == 20 and s["pointing_share"] == pytest.approx(0.1) and s["pointing_hit"] is False
    # two tied maxima, one in the lesion: half → a hit; three, one in the lesion: a third → a miss
    heat = np.zeros(lesion.shape, np.float32)
    heat[[3, 7]] = 1.0
    s = lesion_heat_scores(heat, lesion, lung)
    assert (s["n_max"], s["pointing_share"], s["pointing_hit"]) == (2, 0.5, True)
    assert s["heat_in_lesions"] == 0.5 and s["enrichment"] == pytest.approx(2.5)
    heat[8] = 1.0
    s = lesion_heat_scores(heat, lesion, lung)
    assert (s["n_max"], s["pointing_hit"]) == (3, False) and s["pointing_share"] == pytest.approx(1 / 3)


def test_maximum_outside_the_lesion_and_tolerance():
    lesion, lung = _line()  # lesion voxels 2 and 3
    heat = np.full(lesion.shape, 0.1, np.float32)
    heat[5] = 1.0  # two voxels from the lesion
    assert lesion_heat_scores(heat, lesion, lung)["pointing_hit"] is False
    assert lesion_heat_scores(heat, lesion, lung, tolerance=1)["pointing_hit"] is False
    assert lesion_heat_scores(heat, lesion, lung, tolerance=2)["pointing_hit"] is True
    heat[5], heat[4] = 0.1, 1.0  # next to the lesion
    assert lesion_heat_scores(heat, lesion, lung)["pointing_hit"] is False
    assert lesion_heat_scores(heat, lesion, lung, tolerance=1)["pointing_hit"] is True
    # the dilation is a 6-connected cross: a diagonal neighbour is 2 steps away
    lesion3 = np.zeros((5, 5, 5), bool)
    lesion3[2, 2, 2] = True
    heat3 = np.zeros((5, 5, 5), np.float32)
    heat3[3, 3, 2] = 1.0
    lung3 = np.ones((5, 5, 5), bool)
    assert lesion_heat_scores(heat3, lesion3, lung3, tolerance=1)["pointing_hit"] is False
    assert lesion_heat_scores(heat3, lesion3, lung3, tolerance=2)["pointing_hit"] is True


def test_fractional_masks_are_thresholded_at_one_half():
    lesion, lung = _line()
    frac_lesion = lesion.astype(np.float16)
    frac_lesion[4] = np.float16(0.49)  # less than half lesion: not counted
    frac_lesion[5] = np.float16(0.5)  # half: counted
    frac_lung = lung.astype(np.float16) * np.float16(0.75)  # 0.75 ≥ 0.5: still lung
    heat = np.zeros(lesion.shape, np.float32)
    heat[5] = 1.0
    s = lesion_heat_scores(heat, frac_lesion, frac_lung)
    assert (s["n_lung"], s["n_lesion"]) == (10, 3)
    assert s["lesion_share"] == pytest.approx(0.3) and s["pointing_hit"] is True


def test_undefined_scores_say_why():
    lesion, lung = _line()
    s = lesion_heat_scores(np.zeros(lesion.shape), lesion, lung)
    assert s["note"].startswith("no heat") and s["pointing_hit"] is None
    assert all(math.isnan(s[k]) for k in ("heat_in_lesions", "enrichment", "heat_in_lungs", "pointing_share"))
    assert s["lesion_share"] == 0.2
    heat = np.linspace(0, 1, 20, dtype=np.float32).reshape(20, 1, 1)
    s = lesion_heat_scores(heat, np.zeros_like(lesion), lung)  # a normal scan
    assert s["note"].startswith("no lesion in the lung") and s["pointing_hit"] is None
    assert s["lesion_share"] == 0.0 and math.isnan(s["heat_in_lesions"]) and math.isnan(s["enrichment"])
    heat = np.zeros(lesion.shape, np.float32)
    heat[15] = 1.0  # all heat outside the lung (a marker on the skin, say)
    s = lesion_heat_scores(heat, lesion, lung)
    assert s["note"] == "no heat in the lung" and s["heat_in_lungs"] == 0.0
    assert math.isnan(s["heat_in_lesions"]) and s["pointing_hit"] is False


def test_lesion_heat_scores_bad_input():
    lesion, lung = _line()
    heat = lesion.astype(np.float32)
    with pytest.raises(ValueError, match=r"lesion_mask has shape \(10, 1, 1\), the heatmap \(20, 1, 1\)"):
        lesion_heat_scores(heat, lesion[:10], lung)
    with pytest.raises(ValueError, match=r"lung_mask has shape \(20, 1\), the heatmap \(20, 1, 1\)"):
        lesion_heat_scores(heat, lesion, lung[..., 0])
    with pytest.raises(ValueError, match="expected one"):
        lesion_heat_scores(heat[..., 0], lesion, lung)
    with pytest.raises(ValueError, match=">= 0"):
        lesion_heat_scores(heat - 0.5, lesion, lung)
    with pytest.raises(ValueError, match="lung_mask is empty"):
        lesion_heat_scores(heat, lesion, np.zeros_like(lung))
    with pytest.raises(ValueError, match="tolerance must be an integer >= 0"):
        lesion_heat_scores(heat, lesion, lung, tolerance=-1)


def test_summarize_heat_scores_by_hand():
    lesion, lung = _line()
    hit = lesion_heat_scores(lesion.astype(np.float32), lesion, lung)  # 1, 0.2, 5, hit
    miss_heat = np.zeros(lesion.shape, np.float32)
    miss_heat[[2, 3, 6, 7, 8, 9]] = 1.0
    miss_heat[9] = 2.0  # maximum off the lesion; lesion holds 2 of 7 units of lung heat
    miss = lesion_heat_scores(miss_heat, lesion, lung)
    assert miss["heat_in_lesions"] == pytest.approx(2 / 7) and miss["pointing_hit"] is False
    normal = lesion_heat_scores(miss_heat, np.zeros_like(lesion), lung)
    blank = lesion_heat_scores(np.zeros(lesion.shape), lesion, lung)
    s = summarize_heat_scores([hit, miss, normal, blank], n_boot=500, seed=1)
    assert (s["n_scans"], s["n_scored"], s["n_no_lesion"], s["n_no_heat"]) == (4, 2, 1, 1)
    assert s["heat_in_lesions"] == pytest.approx((1 + 2 / 7) / 2)
    assert s["lesion_share"] == pytest.approx(0.2) and s["chance_hit_rate"] == pytest.approx(0.2)
    assert s["enrichment_median"] == pytest.approx((5 + (2 / 7) / 0.2) / 2)  # median of two = their mean
    assert s["pointing_hit_rate"] == 0.5
    assert 0.0 <= s["pointing_low"] <= 0.5 <= s["pointing_high"] <= 1.0
    assert summarize_heat_scores([hit, miss, normal, blank], n_boot=500, seed=1) == s  # seeded
    all_hits = summarize_heat_scores([hit, hit, hit], n_boot=50)
    assert (all_hits["pointing_hit_rate"], all_hits["pointing_low"], all_hits["pointing_high"]) == (1.0, 1.0, 1.0)
    empty = summarize_heat_scores([normal, blank])
    assert empty["n_scored"] == 0 and math.isnan(empty["pointing_hit_rate"]) and math.isnan(empty["pointing_low"])
    with pytest.raises(ValueError, match="n_boot must be >= 1"):
        summarize_heat_scores([hit], n_boot=0)


def test_score_grad_cam_on_a_blob_detector():
    model = _detector_model([3.0, 0.0])  # heat on the bright blob in the first octant
    v = _volume()
    blob = np.zeros((8, 8, 8), np.float16)
    blob[0:2, 0:2, 0:2] = 1.0
    far = np.zeros((8, 8, 8), np.float16)
    far[6:8, 6:8, 6:8] = 1.0
    lung = np.ones((8, 8, 8), np.float16)
    volumes = np.stack([v, v, v])
    result = score_grad_cam(model, volumes, [blob, far, np.zeros_like(blob)], [lung, lung, lung], n_boot=200)
    first, second, third = result["per_scan"]
    assert [r["index"] for r in result["per_scan"]] == [0, 1, 2]
    assert first["pointing_hit"] is True and first["enrichment"] > 5  # the blob holds 8 of 512 voxels
    assert second["pointing_hit"] is False and second["heat_in_lesions"] == 0.0  # far octant: no heat
    assert third["pointing_hit"] is None and third["note"].startswith("no lesion")
    assert (result["n_scans"], result["n_scored"], result["n_no_lesion"]) == (3, 2, 1)
    assert result["pointing_hit_rate"] == 0.5
    assert result["chance_hit_rate"] == pytest.approx(8 / 512)
    assert result["layer_name"] == "detect" and result["tolerance"] == 0
    # the heat of scan 0 is grad_cam_3d's own map
    heat = grad_cam_3d(model, v)
    assert first["heat_in_lesions"] == pytest.approx(float(heat[0:2, 0:2, 0:2].sum() / heat.sum()))
    with pytest.raises(ValueError, match="got 3 volumes, 2 lesion masks and 3 lung masks"):
        score_grad_cam(model, volumes, [blob, far], [lung, lung, lung])
    with pytest.raises(ValueError, match="no volumes"):
        score_grad_cam(model, volumes[:0], [], [])
