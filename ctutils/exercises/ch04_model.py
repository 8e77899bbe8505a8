"""The checks of chapter 04_model (``notebooks/04_model.ipynb``).

* Exercise 04.1: the number of parameters of a Conv3D layer.
* Exercise 04.2: the size of an axis after n conv + pool blocks.
* Exercise 04.3: the reference CNN with 3 blocks, at the quick profile's 64 × 64 × 32.

Imported, and every check re-exported, by :mod:`ctutils.exercises`: call them as ``exercises.check_…(…)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ctutils.exercises import NotYet, exercise, expect

__all__ = [
    "check_conv3d_params",
    "check_output_size",
    "check_three_block_cnn",
]


def _keras_conv3d_params(kernel_size: int, c_in: int, c_out: int, *, use_bias: bool) -> int:
    """Parameters of a Keras Conv3D layer built on ``c_in`` input channels (imports Keras)."""
    from ctutils.tfimport import keras

    layer = keras.layers.Conv3D(c_out, kernel_size, use_bias=use_bias)
    layer.build((None, 8, 8, 8, c_in))
    return int(layer.count_params())


@exercise("04_model")
def check_conv3d_params(conv3d_params: Callable[..., Any]) -> str:
    """Exercise 04.1: the number of parameters of a Conv3D layer."""
    cases = [(3, 1, 64, True), (3, 64, 64, True), (3, 128, 256, True), (5, 2, 3, True),
             (3, 16, 32, False), (1, 16, 32, False)]
    for k, c_in, c_out, use_bias in cases:
        shown = f"conv3d_params({k}, {c_in}, {c_out}" + (")" if use_bias else ", use_bias=False)")
        got = conv3d_params(k, c_in, c_out) if use_bias else conv3d_params(k, c_in, c_out, use_bias=False)
        expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool)
               or isinstance(got, (float, np.floating)) and float(got).is_integer(),
               f"{shown} should be a whole number of parameters, got {got!r}")
        want = _keras_conv3d_params(k, c_in, c_out, use_bias=use_bias)
        if int(got) == want:
            continue
        slips = {
            k**3 * c_in * c_out: "add the biases: one per output filter (+ c_out)",
            (k**2 * c_in + 1) * c_out: "a 3-D kernel has k × k × k = k³ weights per input channel, not k²",
            (k**3 + 1) * c_out: "each filter has k³ weights for every one of the c_in input channels",
            (k**3 * c_in + 1) * c_out: "with use_bias=False there are no biases (the ResNet's convolutions, "
                                       "followed by batch normalisation)",
        }
        slips.pop(want, None)
        hint = slips.get(int(got), "parameters = (k³ · c_in + 1) · c_out with a bias, k³ · c_in · c_out without")
        raise NotYet(f"{shown} should be {want:,} (as Keras counts), got {int(got):,}: {hint}")
    return "(k³ · c_in + 1) · c_out, as Keras counts: the reference's 4th convolution alone holds 884,992"


def _size_after_blocks(n: int, n_blocks: int, padding: str) -> int:
    for _ in range(n_blocks):
        n = n - 2 if padding == "valid" else n
        n = n // 2 if n >= 1 else 0
        if n < 1:
            return 0
    return n


@exercise("04_model")
def check_output_size(output_size: Callable[..., Any]) -> str:
    """Exercise 04.2: the size of an axis after n conv + pool blocks."""
    cases = [(128, 4, "valid"), (64, 4, "valid"), (46, 4, "valid"), (45, 4, "valid"), (32, 4, "valid"),
             (64, 3, "valid"), (1, 1, "valid"), (64, 4, "same"), (32, 4, "same"), (15, 4, "same")]
    for n, n_blocks, padding in cases:
        shown = f"output_size({n}, {n_blocks}, padding={padding!r})"
        got = output_size(n, n_blocks, padding=padding)
        want = _size_after_blocks(n, n_blocks, padding)
        expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool)
               or isinstance(got, (float, np.floating)) and float(got).is_integer(),
               f"{shown} should be a whole number of voxels, got {got!r} (MaxPool3D(2) rounds down: use //)")
        if int(got) == want:
            continue
        if want == 0 and int(got) < 0:
            hint = "once no voxel is left, the model cannot be built: return 0, not a negative size"
        elif padding == "valid" and int(got) == n // 2**n_blocks:
            hint = "with valid padding each 3 × 3 × 3 convolution removes k − 1 = 2 voxels before the pooling halves"
        elif padding == "same" and int(got) == _size_after_blocks(n, n_blocks, "valid"):
            hint = "with same padding the convolution keeps the size; only the pooling halves it"
        else:
            hint = "per block: valid conv n → n − 2 (same: n), then pool n → n // 2; 0 once nothing is left"
        raise NotYet(f"{shown} should be {want}, got {got!r}: {hint}")
    return ("128 × 128 × 64 ends at 6 × 6 × 2 after the reference's 4 blocks; 45 voxels vanish, 46 leave one: "
            "minimum_input_size() = 46")


_THREE_BLOCK_PARAMS = 401_345  # (27+1)·64 + (27·64+1)·64 + (27·64+1)·128 + 4·(64+64+128) + (128+1)·512 + 513


@exercise("04_model")
def check_three_block_cnn(build_three_blocks: Callable[[tuple[int, ...]], Any]) -> str:
    """Exercise 04.3: the reference CNN with 3 blocks, at the quick profile's 64 × 64 × 32."""
    model = build_three_blocks((64, 64, 32, 1))
    expect(model is not None and hasattr(model, "count_params") and hasattr(model, "layers"),
           f"build_three_blocks should return a keras.Model, got {type(model).__name__}")
    expect(tuple(model.input_shape) == (None, 64, 64, 32, 1),
           f"build it for the input_shape it is given, (64, 64, 32, 1); its input is {model.input_shape}")
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv3D"]
    filters = tuple(int(layer.filters) for layer in convs)
    expect(filters == (64, 64, 128), f"the reference's first three blocks have 64, 64 and 128 filters; "
                                     f"yours have {filters}: build_cnn3d(..., filters=(64, 64, 128))")
    paddings = sorted({layer.padding for layer in convs})
    expect(paddings == ["valid"], f"keep the reference's valid padding (got {paddings}): "
                                  "3 blocks need only 22 voxels per axis, so 64 × 64 × 32 builds")
    expect(tuple(model.output_shape) == (None, 1), f"the output should be (None, 1), got {model.output_shape}")
    n = int(model.count_params())
    expect(n == _THREE_BLOCK_PARAMS, f"{n:,} parameters, expected {_THREE_BLOCK_PARAMS:,}: keep the reference's "
                                     "other settings (dense_units=512, dropout=0.3)")
    return (f"{_THREE_BLOCK_PARAMS:,} parameters vs 1,352,897 for 4 blocks (the 4th convolution alone holds "
            "884,992); the minimum input drops from 46 to 22 voxels per axis")
