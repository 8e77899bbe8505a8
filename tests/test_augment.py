"""Tests for ctutils.augment: hand-computed geometry on tiny volumes, seeds, graph mode."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ctutils.augment import AugmentConfig, augment_volume, preview_augmentations  # noqa: E402
from ctutils.orientation import display_slice  # noqa: E402

SEED = tf.constant([3, 4])


def only(**kwargs) -> AugmentConfig:
    """A config with every op off except the ones given."""
    base = dict(rotation_p=0.0, flip_p=0.0, zoom_p=0.0, intensity_p=0.0, noise_p=0.0)
    base.update(kwargs)
    return AugmentConfig(**base)


def random_volume(shape=(16, 16, 8), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def bright_voxel(x: int, y: int, shape=(16, 16, 8)) -> np.ndarray:
    v = np.zeros(shape, np.float32)
    v[x, y, :] = 1.0
    return v


# --- rotation --------------------------------------------------------------------------------


def test_rotation_90_moves_bright_voxel_where_computed_by_hand():
    # Centre of a 16 x 16 plane is (7.5, 7.5). Voxel (12, 7) is at offset (+4.5, -0.5).
    # +90 deg (counter-clockwise in the radiological display) maps (dx, dy) -> (dy, -dx):
    # offset (-0.5, -4.5) -> voxel (7, 3), in every slice.
    v = bright_voxel(12, 7)
    out = augment_volume(v, seed=SEED, config=only(rotation_p=1.0, angles_deg=(90,))).numpy()
    expected = bright_voxel(7, 3)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # The same as np.rot90 with k=-1 in the (X, Y) plane ...
    np.testing.assert_allclose(out, np.rot90(v, k=-1, axes=(0, 1)), atol=1e-5)
    # ... which is counter-clockwise in the display used by every plot.
    for z in range(v.shape[2]):
        np.testing.assert_allclose(display_slice(out, z), np.rot90(display_slice(v, z), k=1), atol=1e-5)


def test_rotation_minus_90_is_the_other_way():
    v = random_volume()
    out = augment_volume(v, seed=SEED, config=only(rotation_p=1.0, angles_deg=(-90,))).numpy()
    np.testing.assert_allclose(out, np.rot90(v, k=1, axes=(0, 1)), atol=1e-5)


def test_rotation_applies_one_angle_to_all_slices():
    slice_ = random_volume((16, 16, 1))[:, :, 0]
    v = np.repeat(slice_[:, :, None], 8, axis=2)
    out = augment_volume(v, seed=SEED, config=only(rotation_p=1.0, max_angle_deg=30.0)).numpy()
    assert not np.allclose(out[:, :, 0], slice_, atol=1e-3)  # it did rotate
    for z in range(1, 8):
        np.testing.assert_array_equal(out[:, :, z], out[:, :, 0])


def test_rotation_fills_corners_with_zero_and_keeps_centre():
    v = np.ones((16, 16, 2), np.float32)
    out = augment_volume(v, seed=SEED, config=only(rotation_p=1.0, angles_deg=(45,))).numpy()
    assert out[0, 0, 0] == 0.0 and out[15, 15, 1] == 0.0  # corners come from outside: air
    np.testing.assert_allclose(out[6:10, 6:10], 1.0, atol=1e-6)


def test_reference_config_uses_its_angle_set():
    cfg = AugmentConfig.reference()
    assert cfg.rotation_p == 1.0 and cfg.angles_deg == (-20.0, -10.0, -5.0, 5.0, 10.0, 20.0)
    assert (cfg.flip_p, cfg.zoom_p, cfg.intensity_p, cfg.noise_p) == (0.0, 0.0, 0.0, 0.0)
    v = bright_voxel(12, 7)
    by_angle = {a: augment_volume(v, seed=SEED, config=only(rotation_p=1.0, angles_deg=(a,))).numpy() for a in cfg.angles_deg}
    counts = dict.fromkeys(cfg.angles_deg, 0)
    for i in range(60):
        out = augment_volume(v, seed=tf.constant([i, 0]), config=cfg).numpy()
        (angle,) = [a for a, expected in by_angle.items() if np.allclose(out, expected)]
        counts[angle] += 1
    assert min(counts.values()) >= 2  # each angle drawn (expected 10 of 60 each)


# --- flip, zoom, intensity, noise --------------------------------------------------------------


def test_flip_is_axis0_reversal_and_an_involution():
    v = random_volume()
    cfg = only(flip_p=1.0)
    once = augment_volume(v, seed=SEED, config=cfg).numpy()
    np.testing.assert_array_equal(once, v[::-1])
    twice = augment_volume(once, seed=tf.constant([9, 9]), config=cfg).numpy()
    np.testing.assert_array_equal(twice, v)


def test_zoom_keeps_shape_and_magnifies():
    v = bright_voxel(8, 8, shape=(16, 16, 4))
    v[7:9, 7:9] = 1.0  # a 2 x 2 square around the centre
    cfg = only(zoom_p=1.0, zoom_range=(2.0, 2.0))
    out = augment_volume(v, seed=SEED, config=cfg)
    assert out.shape == (16, 16, 4) and out.dtype == tf.float32
    # Twice as large: the bright area grows about 4x (bilinear blurs the edge a little).
    assert 3.0 < out.numpy()[:, :, 0].sum() / v[:, :, 0].sum() < 5.0


def test_zoom_out_pads_with_air():
    v = np.ones((16, 16, 2), np.float32)
    out = augment_volume(v, seed=SEED, config=only(zoom_p=1.0, zoom_range=(0.5, 0.5))).numpy()
    assert out[0, 0, 0] == 0.0 and out[15, 8, 0] == 0.0
    np.testing.assert_allclose(out[6:10, 6:10], 1.0)


def test_intensity_shift_and_scale_by_hand():
    v = np.full((8, 8, 2), 0.5, np.float32)
    out = augment_volume(v, seed=SEED, config=only(intensity_p=1.0, intensity_shift=(0.1, 0.1), intensity_scale=(1.0, 1.0)))
    np.testing.assert_allclose(out.numpy(), 0.6, atol=1e-6)
    out = augment_volume(v, seed=SEED, config=only(intensity_p=1.0, intensity_shift=(0.0, 0.0), intensity_scale=(1.2, 1.2)))
    np.testing.assert_allclose(out.numpy(), 0.6, atol=1e-6)
    # Clipped to [0, 1]: 0.5 * 3 = 1.5 -> 1.
    out = augment_volume(v, seed=SEED, config=only(intensity_p=1.0, intensity_shift=(0.0, 0.0), intensity_scale=(3.0, 3.0)))
    np.testing.assert_array_equal(out.numpy(), 1.0)


def test_noise_has_the_requested_std_and_stays_in_range():
    v = np.full((32, 32, 8), 0.5, np.float32)
    out = augment_volume(v, seed=SEED, config=only(noise_p=1.0, noise_std=0.05)).numpy()
    assert abs(out.mean() - 0.5) < 0.005  # 8192 draws: standard error 0.0006
    assert 0.045 < out.std() < 0.055
    loud = augment_volume(v, seed=SEED, config=only(noise_p=1.0, noise_std=1.0)).numpy()
    assert loud.min() == 0.0 and loud.max() == 1.0


def test_all_ops_output_in_unit_range_with_static_shape():
    v = random_volume()
    cfg = AugmentConfig(rotation_p=1, flip_p=1, zoom_p=1, intensity_p=1, noise_p=1, noise_std=0.2,
                        intensity_scale=(1.5, 2.0), intensity_shift=(0.2, 0.3))
    out = augment_volume(v, seed=SEED, config=cfg)
    assert out.shape == v.shape and out.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 1.0


# --- probabilities and seeds --------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [AugmentConfig.none(), only(max_angle_deg=40.0, noise_std=0.5)])
def test_p_zero_is_identity(cfg):
    v = random_volume()
    for i in range(3):
        np.testing.assert_array_equal(augment_volume(v, seed=tf.constant([i, 1]), config=cfg).numpy(), v)


def test_probability_is_respected():
    v = random_volume((8, 8, 2))
    flipped = [
        np.array_equal(augment_volume(v, seed=tf.constant([i, 0]), config=only(flip_p=0.25)).numpy(), v[::-1])
        for i in range(200)
    ]
    assert 30 <= sum(flipped) <= 70  # Binomial(200, 0.25): mean 50, sd 6.1


def test_same_seed_same_output_different_seed_different():
    v = random_volume()
    cfg = AugmentConfig(rotation_p=1, flip_p=0.5, zoom_p=1, intensity_p=1, noise_p=1)
    a = augment_volume(v, seed=tf.constant([1, 2]), config=cfg).numpy()
    b = augment_volume(v, seed=tf.constant([1, 2], tf.int64), config=cfg).numpy()
    c = augment_volume(v, seed=tf.constant([1, 3]), config=cfg).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_input_is_not_modified():
    v = random_volume()
    before = v.copy()
    augment_volume(v, seed=SEED, config=AugmentConfig(rotation_p=1, flip_p=1, noise_p=1))
    np.testing.assert_array_equal(v, before)


def test_graph_mode_matches_eager_and_keeps_static_shape():
    v = random_volume()
    cfg = AugmentConfig(rotation_p=1, flip_p=0.5, zoom_p=1, intensity_p=1, noise_p=1)

    @tf.function
    def run(x, seed):
        out = augment_volume(x, seed=seed, config=cfg)
        assert out.shape == (16, 16, 8)  # static shape while tracing
        return out

    np.testing.assert_allclose(
        run(tf.constant(v), tf.constant([5, 6])).numpy(),
        augment_volume(v, seed=tf.constant([5, 6]), config=cfg).numpy(),
        atol=1e-5,  # graph rewrites may fuse the float arithmetic differently

    )
    ds = tf.data.Dataset.from_tensors(tf.constant(v)).map(lambda x: augment_volume(x, seed=tf.constant([5, 6]), config=cfg))
    assert ds.element_spec.shape == (16, 16, 8)


# --- preview and config validation --------------------------------------------------------------


def test_preview_augmentations_numpy_and_reproducible():
    v = random_volume()
    cfg = AugmentConfig()
    first = preview_augmentations(v, config=cfg, seed=1, n=3)
    again = preview_augmentations(v, config=cfg, seed=1, n=3)
    assert len(first) == 3 and all(isinstance(a, np.ndarray) and a.shape == v.shape for a in first)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rotation_p": 1.5}, "rotation_p"),
        ({"flip_p": -0.1}, "flip_p"),
        ({"zoom_range": (1.2, 0.8)}, "zoom_range"),
        ({"zoom_range": (0.0, 1.0)}, "zoom_range"),
        ({"angles_deg": ()}, "angles_deg"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"max_angle_deg": float("nan")}, "max_angle_deg"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AugmentConfig(**kwargs)


def test_bad_volume_or_seed_raises():
    with pytest.raises(ValueError, match="3-D"):
        augment_volume(np.zeros((4, 4), np.float32), seed=SEED, config=AugmentConfig())
    with pytest.raises(ValueError, match="seed"):
        augment_volume(np.zeros((4, 4, 2), np.float32), seed=tf.constant([1.0, 2.0]), config=AugmentConfig())
    with pytest.raises(ValueError, match="3-D"):
        preview_augmentations(np.zeros((4, 4)), config=AugmentConfig(), seed=0)


def test_config_dict_round_trip():
    cfg = AugmentConfig.reference()
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        AugmentConfig.from_dict({"spin": 1})
