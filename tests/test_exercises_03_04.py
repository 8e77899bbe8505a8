"""ctutils.exercises: the checks of chapters 03 (augmentation) and 04 (model).

Each check passes a right answer, gives a useful hint for the usual wrong answers, and says
"not done yet" for the student copy's stub (a function that raises NotImplementedError).
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ctutils import exercises  # noqa: E402
from ctutils.exercises import ch03_augmentation, ch04_model
from ctutils.models import build_cnn3d  # noqa: E402

NOT_DONE = "❌ Exercise not done yet: implement `stub` above"


def stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: write your code here, then run the check cell below")


def verdict(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


# ============================================================================= 03_augmentation
# ----------------------------------------------------------------------------- flip_left_right


def test_flip_left_right_right(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_flip_left_right(lambda v: tf.reverse(v, axis=[0])).passed is True
    assert verdict(capsys) == ("✅ Correct: axis 0 reversed, the same as augment_volume's flip, "
                               "eagerly and inside a tf.function graph\n")
    assert exercises.check("flip_left_right", lambda v: v[::-1]).passed is True  # slicing is a TF op too


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda v: tf.reverse(v, axis=[1]), "❌ Not yet: that flips axis 1 (Y: anterior–posterior"),
        (lambda v: tf.reverse(v, axis=[2]), "❌ Not yet: that flips axis 2 (Z: the slices, head–feet)"),
        (lambda v: v, "❌ Not yet: the volume came back unchanged"),
        (lambda v: None, "❌ Not yet: flip_left_right returned None"),
        (lambda v: tf.reverse(v, axis=[0])[:, :, :2], "❌ Not yet: the flip should keep the shape (X, Y, Z) = (5, 4, 3)"),
        (lambda v: 0.5 * tf.reverse(v, axis=[0]), "❌ Not yet: the result differs from augment_volume's flip"),
        (lambda v: v.numpy()[::-1], "❌ Not yet: it works eagerly but fails inside a tf.function graph"),
    ],
)
def test_flip_left_right_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_flip_left_right(answer).passed is False
    assert verdict(capsys).startswith(hint)


def test_flip_left_right_stub(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_flip_left_right(stub).passed is False
    assert verdict(capsys).startswith(NOT_DONE)


# ----------------------------------------------------------------------------- rotated_position


def test_rotated_position_matches_augment_volume() -> None:
    # The check's truth comes from augment_volume; by hand, +90° is np.rot90(v, k=-1, axes=(0, 1)).
    assert ch03_augmentation._rotated_by_helper(2, 1, 9) == (1, 6)
    assert ch03_augmentation._rotated_by_helper(0, 0, 3) == (0, 2)
    assert ch03_augmentation._rotated_by_helper(7, 2, 8) == (2, 0)


def test_rotated_position_right(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_rotated_position(lambda x, y, size: (y, size - 1 - x)).passed is True
    assert verdict(capsys) == "✅ Correct: (x, y) → (y, size − 1 − x), the same as augment_volume puts the voxel\n"
    assert exercises.check_rotated_position(lambda x, y, size: np.array([y, size - 1 - x])).passed is True


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda x, y, s: (s - 1 - y, x), "❌ Not yet: rotated_position(2, 1, 9) should be (1, 6), got (7, 2): that is -90°"),
        (lambda x, y, s: (y, x), "❌ Not yet: rotated_position(2, 1, 9) should be (1, 6), got (1, 2): that swaps x and y"),
        (lambda x, y, s: (s - 1 - x, s - 1 - y), "❌ Not yet: rotated_position(2, 1, 9) should be (1, 6), got (6, 7): that is a 180° turn"),
        (lambda x, y, s: (y, s - x), "❌ Not yet: rotated_position(2, 1, 9) should be (1, 6), got (1, 7): work through np.rot90"),
        (lambda x, y, s: y, "❌ Not yet: rotated_position(2, 1, 9) should return a pair of indices"),
        (lambda x, y, s: (x, y, 0), "❌ Not yet: rotated_position(2, 1, 9) should return a pair of indices"),
    ],
)
def test_rotated_position_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_rotated_position(answer).passed is False
    assert verdict(capsys).startswith(hint)


def test_rotated_position_stub(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_rotated_position(stub).passed is False
    assert verdict(capsys).startswith(NOT_DONE)


# ----------------------------------------------------------------------------- balanced_weights


def balanced(counts):
    n, k = sum(counts.values()), len(counts)
    return {c: n / (k * m) for c, m in counts.items()}


def test_balanced_weights_right(capsys: pytest.CaptureFixture[str]) -> None:
    from ctutils.pipeline import class_weights

    labels = np.repeat([0, 1], [254, 856])
    assert balanced({0: 254, 1: 856}) == pytest.approx(class_weights(labels))  # the check's formula = the helper's
    assert exercises.check_balanced_weights(balanced).passed is True
    assert verdict(capsys).startswith("✅ Correct: full MosMedData (254 normal, 856 abnormal): normal 2.185, abnormal 0.648")


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda c: {k: m / sum(c.values()) for k, m in c.items()}, "the rarer class must weigh more"),
        (lambda c: {k: sum(c.values()) / m for k, m in c.items()}, "divide by the number of classes k too"),
        (lambda c: {k: (1 / m) / sum(1 / v for v in c.values()) for k, m in c.items()},
         "balanced weights are not normalised to sum to 1"),
        (lambda c: [1.0, 1.0], "balanced_weights({0: 254, 1: 856}) should return a dict {class: weight}, got list"),
        (lambda c: {0: 2.185}, "balanced_weights({0: 254, 1: 856}) should have one weight per class"),
        (lambda c: {k: 1.0 for k in c}, "balanced_weights({0: 254, 1: 856}) should be {0: 2.18"),
    ],
)
def test_balanced_weights_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_balanced_weights(answer).passed is False
    out = verdict(capsys)
    assert out.startswith("❌ Not yet: ") and hint in out


def test_balanced_weights_stub(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_balanced_weights(stub).passed is False
    assert verdict(capsys).startswith(NOT_DONE)


# ============================================================================= 04_model
# ----------------------------------------------------------------------------- conv3d_params


def conv3d_params(kernel_size, c_in, c_out, *, use_bias=True):
    return (kernel_size**3 * c_in + int(use_bias)) * c_out


def test_conv3d_params_right(capsys: pytest.CaptureFixture[str]) -> None:
    assert conv3d_params(3, 128, 256) == 884_992  # the reference's 4th convolution, by hand
    assert ch04_model._keras_conv3d_params(3, 128, 256, use_bias=True) == 884_992
    assert exercises.check_conv3d_params(conv3d_params).passed is True
    assert verdict(capsys).startswith("✅ Correct: (k³ · c_in + 1) · c_out, as Keras counts")


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda k, ci, co, use_bias=True: k**3 * ci * co,
         "conv3d_params(3, 1, 64) should be 1,792 (as Keras counts), got 1,728: add the biases"),
        (lambda k, ci, co, use_bias=True: (k**2 * ci + 1) * co, "not k²"),
        (lambda k, ci, co, use_bias=True: (k**3 + 1) * co, "for every one of the c_in input channels"),
        (lambda k, ci, co, use_bias=True: (k**3 * ci + 1) * co,
         "conv3d_params(3, 16, 32, use_bias=False) should be 13,824 (as Keras counts), got 13,856: with use_bias=False"),
        (lambda k, ci, co, use_bias=True: (k**3 * ci + 1) * co / 3, "should be a whole number of parameters"),
        (lambda k, ci, co, use_bias=True: (k**3 * ci + 2) * co, "parameters = (k³ · c_in + 1) · c_out"),
    ],
)
def test_conv3d_params_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_conv3d_params(answer).passed is False
    out = verdict(capsys)
    assert out.startswith("❌ Not yet: ") and hint in out


def test_conv3d_params_stub(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_conv3d_params(stub).passed is False
    assert verdict(capsys).startswith(NOT_DONE)


# ----------------------------------------------------------------------------- output_size


def output_size(n, n_blocks, padding="valid"):
    for _ in range(n_blocks):
        n = (n - 2 if padding == "valid" else n) // 2
        if n < 1:
            return 0
    return n


def test_output_size_hand_computed() -> None:
    from ctutils.models import minimum_input_size

    # 128 → 126 → 63 → 61 → 30 → 28 → 14 → 12 → 6; 64 → 62 → 31 → 29 → 14 → 12 → 6 → 4 → 2
    assert ch04_model._size_after_blocks(128, 4, "valid") == 6
    assert ch04_model._size_after_blocks(64, 4, "valid") == 2
    for padding in ("valid", "same"):
        for blocks in (1, 2, 3, 4):
            smallest = minimum_input_size(blocks, padding)
            assert ch04_model._size_after_blocks(smallest, blocks, padding) == 1
            assert ch04_model._size_after_blocks(smallest - 1, blocks, padding) == 0


def test_output_size_right(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_output_size(output_size).passed is True
    assert verdict(capsys).startswith("✅ Correct: 128 × 128 × 64 ends at 6 × 6 × 2")


def no_zero(n, n_blocks, padding="valid"):
    for _ in range(n_blocks):
        n = (n - 2 if padding == "valid" else n) // 2
    return n


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda n, b, padding="valid": n // 2**b,
         "output_size(128, 4, padding='valid') should be 6, got 8: with valid padding each 3 × 3 × 3 convolution removes"),
        (lambda n, b, padding="valid": (n - 2) / 2**b,
         "output_size(128, 4, padding='valid') should be a whole number of voxels, got 7.875"),
        (no_zero, "output_size(1, 1, padding='valid') should be 0, got -1: once no voxel is left"),
        (lambda n, b, padding="valid": output_size(n, b, "valid"),
         "output_size(64, 4, padding='same') should be 4, got 2: with same padding the convolution keeps the size"),
    ],
)
def test_output_size_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_output_size(answer).passed is False
    assert verdict(capsys).startswith(f"❌ Not yet: {hint}")


def test_output_size_stub(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_output_size(stub).passed is False
    assert verdict(capsys).startswith(NOT_DONE)


# ----------------------------------------------------------------------------- three_block_cnn


def test_three_block_cnn_right(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_three_block_cnn(lambda shape: build_cnn3d(shape, filters=(64, 64, 128))).passed is True
    assert verdict(capsys).startswith("✅ Correct: 401,345 parameters vs 1,352,897 for 4 blocks")


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda shape: build_cnn3d(shape, filters=(64, 64, 128), padding="same"), "keep the reference's valid padding"),
        (lambda shape: build_cnn3d(shape, filters=(16, 32, 64)), "yours have (16, 32, 64)"),
        (lambda shape: build_cnn3d((64, 64, 64, 1), filters=(64, 64, 128)), "build it for the input_shape it is given"),
        (lambda shape: build_cnn3d(shape, filters=(64, 64, 128), dense_units=128), "401,345"),
        (lambda shape: None, "build_three_blocks should return a keras.Model, got NoneType"),
        (lambda shape: build_cnn3d(shape), "axis Z has 32 voxels, but the valid-padding CNN with 4 blocks needs at least 46"),
    ],
)
def test_three_block_cnn_wrong_answers_get_a_hint(answer, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_three_block_cnn(answer).passed is False
    out = verdict(capsys)
    assert out.startswith("❌ Not yet: ") and hint in out


def test_three_block_cnn_stub(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check_three_block_cnn(stub).passed is False
    assert verdict(capsys).startswith(NOT_DONE)


def test_the_chapters_checks_are_registered() -> None:
    assert [e.name for e in exercises.list_exercises("03_augmentation")] == [
        "flip_left_right", "rotated_position", "balanced_weights"]
    assert [e.name for e in exercises.list_exercises("04_model")] == [
        "conv3d_params", "output_size", "three_block_cnn"]
