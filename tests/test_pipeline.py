"""Tests for ctutils.pipeline on a tiny cache (12 volumes of 16 x 16 x 8)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from ctutils.augment import AugmentConfig  # noqa: E402
from ctutils.cache import write_cache  # noqa: E402
from ctutils.pipeline import class_weights, make_arrays_dataset, make_dataset  # noqa: E402
from ctutils.preprocess import PreprocessConfig  # noqa: E402

SHAPE = (16, 16, 8)
#                0        1        2      3      4        5        6      7       8        9       10       11
SPLITS = ["train", "train", "val", "test", "train", "train", "val", "train", "train", "test", "train", "train"]
LABELS = [0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    # Volume i is filled with i / 100, so a batch tells which rows it holds.
    volumes = np.stack([np.full(SHAPE, i / 100, np.float32) for i in range(len(LABELS))])
    return write_cache(
        tmp_path_factory.mktemp("cache"), volumes, LABELS, splits=SPLITS, config=PreprocessConfig(shape=SHAPE)
    )


def rows(batch_x) -> list[int]:
    """Row ids of the (unaugmented) volumes in a batch."""
    return [int(round(float(v) * 100)) for v in batch_x[:, 0, 0, 0, 0]]


def collect(ds) -> tuple[list[int], list[float]]:
    ids, ys = [], []
    for x, y in ds:
        ids += rows(x.numpy())
        ys += y.numpy().tolist()
    return ids, ys


def test_element_spec_is_static(cache):
    ds = make_dataset(cache, "train", batch_size=2)
    x_spec, y_spec = ds.element_spec
    assert x_spec.shape.as_list() == [None, *SHAPE, 1] and x_spec.dtype == tf.float32
    assert y_spec.shape.as_list() == [None] and y_spec.dtype == tf.float32
    ds = make_dataset(cache, "train", batch_size=2, augment=AugmentConfig(), drop_remainder=True)
    assert ds.element_spec[0].shape.as_list() == [2, *SHAPE, 1]


def test_val_and_test_in_cache_order_unaugmented_with_aligned_labels(cache):
    for split in ("val", "test"):
        ids, ys = collect(make_dataset(cache, split, batch_size=2))
        expected = [i for i, s in enumerate(SPLITS) if s == split]
        assert ids == expected
        assert ys == [float(LABELS[i]) for i in expected]
        np.testing.assert_array_equal(cache.indices(split), expected)


def test_batch_count_and_remainder(cache):
    # 8 training volumes: batches of 3 -> 3, 3, 2; with drop_remainder -> 3, 3.
    sizes = [int(x.shape[0]) for x, _ in make_dataset(cache, "train", batch_size=3)]
    assert sizes == [3, 3, 2]
    sizes = [int(x.shape[0]) for x, _ in make_dataset(cache, "train", batch_size=3, drop_remainder=True)]
    assert sizes == [3, 3]


def test_train_is_shuffled_with_labels_still_aligned(cache):
    ids, ys = collect(make_dataset(cache, "train", batch_size=2, seed=1))
    train = [i for i, s in enumerate(SPLITS) if s == "train"]
    assert sorted(ids) == train
    assert ys == [float(LABELS[i]) for i in ids]
    # Shuffled: over a few seeds at least one order differs from the cache order.
    orders = {tuple(collect(make_dataset(cache, "train", seed=s))[0]) for s in range(4)}
    assert orders != {tuple(train)}


def test_same_seed_same_batches_with_augmentation(cache):
    cfg = AugmentConfig(rotation_p=1, flip_p=0.5, zoom_p=0.5, intensity_p=1, noise_p=1)

    def two_epochs(seed):
        ds = make_dataset(cache, "train", batch_size=3, augment=cfg, seed=seed)
        return [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(2)]

    a, b, c = two_epochs(0), two_epochs(0), two_epochs(1)
    for epoch_a, epoch_b in zip(a, b):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    # Each epoch reshuffles and re-augments; another seed gives other batches.
    assert not np.array_equal(a[0][0][0], a[1][0][0])
    assert not np.array_equal(a[0][0][0], c[0][0][0])


def test_repeat_reshuffles_each_pass(cache):
    ds = make_dataset(cache, "train", batch_size=8, repeat=True, seed=2)
    first, second = [rows(x.numpy()) for x, _ in ds.take(2)]
    assert sorted(first) == sorted(second) == [i for i, s in enumerate(SPLITS) if s == "train"]
    assert first != second


def test_augmentation_changes_train_volumes_in_range(cache):
    ds = make_dataset(cache, "train", batch_size=8, augment=AugmentConfig(intensity_p=1.0, noise_p=1.0, noise_std=0.05))
    x, _ = next(iter(ds))
    x = x.numpy()
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.std(axis=(1, 2, 3, 4)).min() > 0.01  # noise added to every (constant) volume


def test_no_augmentation_by_default_and_identity_config_skipped(cache):
    for augment in (None, AugmentConfig.none()):
        x, _ = next(iter(make_dataset(cache, "train", batch_size=8, augment=augment)))
        x = x.numpy()
        for volume in x:
            assert np.unique(volume).size == 1  # still the constant volume i / 100


def test_accepts_a_path(cache):
    ids, _ = collect(make_dataset(cache.root, "val"))
    assert ids == [2, 6]


def test_empty_split_names_cache_and_split(tmp_path):
    volumes = np.zeros((3, *SHAPE), np.float32)
    small = write_cache(tmp_path / "c", volumes, [0, 1, 0], splits=["train", "train", "val"], config=PreprocessConfig(shape=SHAPE))
    with pytest.raises(ValueError, match=r"c: split 'test' has no scans"):
        make_dataset(small, "test")


def test_bad_arguments(cache):
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(cache, "train", batch_size=0)
    with pytest.raises(ValueError, match="augment"):
        make_dataset(cache, "train", augment={"rotation_p": 1})
    with pytest.raises(ValueError, match="labels"):
        make_arrays_dataset(np.zeros((3, *SHAPE), np.float32), [0, 1])


def test_arrays_dataset_reads_rows(tmp_path):
    volumes = np.stack([np.full(SHAPE, i / 100, np.float32) for i in range(5)])
    ids, ys = collect(make_arrays_dataset(volumes, [0, 1, 1, 0, 1], batch_size=2))
    assert ids == [0, 1, 2, 3, 4] and ys == [0, 1, 1, 0, 1]


def test_class_weights_by_hand():
    # 4 labels, 2 classes: 0 once -> 4 / (2 * 1) = 2.0; 1 three times -> 4 / (2 * 3) = 0.667.
    assert class_weights([0, 1, 1, 1]) == {0: 2.0, 1: pytest.approx(2 / 3)}
    assert class_weights(np.array([1, 0, 1, 0])) == {0: 1.0, 1: 1.0}
    # Same as scikit-learn's "balanced".
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array(LABELS)
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=labels)
    assert list(class_weights(labels).values()) == pytest.approx(expected.tolist())
    for bad in ([], [[0, 1]], [0, -1], [0.5, 1]):
        with pytest.raises(ValueError, match="class_weights"):
            class_weights(bad)


def test_model_fit_runs_on_the_augmented_pipeline(cache):
    # The reference failed here: "as_list() is not defined on an unknown TensorShape".
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((*SHAPE, 1)),
            keras.layers.Conv3D(2, 3, activation="relu"),
            keras.layers.GlobalAveragePooling3D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    train = make_dataset(cache, "train", batch_size=2, augment=AugmentConfig.reference())
    val = make_dataset(cache, "val", batch_size=2)
    weights = class_weights(cache.labels("train"))
    history = model.fit(train, validation_data=val, epochs=2, class_weight=weights, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["val_loss"]).all()
