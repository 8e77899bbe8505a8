"""Tests for data/real-ct: the shipped chest CT matches its README, and make_reduced.py does what it says.

Reading and displaying it (spine at the bottom, the right lung on the viewer's left, upside down
without the affine) are checked in test_orientation.py with the ``real_ct_volume`` fixture.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import REAL_CT, make_nifti

from ctutils import course

README = REAL_CT.parent / "README.md"
SCRIPT = REAL_CT.parent / "make_reduced.py"


def _make_reduced():
    spec = importlib.util.spec_from_file_location("make_reduced", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_file_is_the_one_its_readme_describes(real_ct):
    row = re.search(r"^\| SHA-256 \| `([0-9a-f]{64})` \|$", README.read_text(encoding="utf-8"), re.M)
    assert row, f"{README}: no '| SHA-256 | `…` |' row"
    assert hashlib.sha256(real_ct.read_bytes()).hexdigest() == row.group(1)
    assert real_ct.stat().st_size <= 4 * 1024**2


def test_header_int16_hu_at_most_256_in_plane_stored_lps(real_ct):
    image = nib.load(real_ct)
    assert image.get_data_dtype() == np.int16
    assert image.shape == (256, 199, 48)
    assert max(image.shape[:2]) <= 256
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S")
    assert nib.affines.voxel_sizes(image.affine) == pytest.approx([1.140625, 1.140625, 5.0])
    assert image.dataobj.slope == 1.0 and image.dataobj.inter == 0.0  # stored values are HU
    assert nib.aff2axcodes(nib.as_closest_canonical(image).affine) == ("R", "A", "S")


def test_load_volume_reads_hu_in_ras(real_ct_volume):
    volume = real_ct_volume
    assert volume.original_axcodes == ("L", "P", "S")
    assert volume.axcodes == ("R", "A", "S")
    assert volume.data.shape == (256, 199, 48)
    assert volume.spacing_mm == pytest.approx((1.140625, 1.140625, 5.0))
    assert volume.data.min() == -1024
    assert -1000 < np.median(volume.data) < 100  # mostly body, not air: it is cropped to the body


def test_course_points_at_the_shipped_file(real_ct):
    assert course.real_ct_path() == real_ct


# --- make_reduced.py on a hand-made volume ---------------------------------------------------


def _chest(shape=(300, 41, 2)) -> np.ndarray:
    """Air, a 40 HU "body" at X 5:295, Y 15:26, and on slice 1 a 2 x 2 block of 100, 200, 300, 400."""
    hu = np.full(shape, -1000, dtype=np.int16)
    hu[5:295, 15:26, :] = 40
    hu[6:8, 15:17, 1] = [[100, 200], [300, 400]]
    return hu


def test_reduce_ct_crops_to_the_body_and_averages_2x2_blocks():
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    affine[:3, 3] = [100.0, 50.0, -20.0]
    data, new_affine, facts = _make_reduced().reduce_ct(_chest(), affine)
    # Body X 5:295 plus 10 mm -> 0:300 (clipped), 300 > 256 so factor 2. Body Y 15:26 plus
    # 10 mm -> 5:36, an odd 31 rows, grown at the end to 5:37.
    assert facts["factor"] == 2
    assert facts["crop"] == (slice(0, 300), slice(5, 37), slice(0, 2))
    assert data.dtype == np.int16 and data.shape == (150, 16, 2)
    assert data[3, 5, 1] == 250  # (100 + 200 + 300 + 400) / 4: source X 6:8, Y 15:17
    assert data[3, 5, 0] == 40 and data[0, 0, 0] == -1000
    assert data[2, 5, 0] == -480  # the body's edge: X 4 is air, X 5 body, (2 * -1000 + 2 * 40) / 4
    # New voxel (i, j, k) = centre of source voxels (2i, 5 + 2j) and (2i + 1, 6 + 2j).
    expected = np.diag([-2.0, -2.0, 2.0, 1.0])
    expected[:3, 3] = [100.0 - 0.5, 50.0 - 5.5, -20.0]
    np.testing.assert_allclose(new_affine, expected)
    assert nib.aff2axcodes(new_affine) == ("L", "P", "S")


def test_reduce_ct_keeps_small_scans_at_full_resolution():
    data, new_affine, facts = _make_reduced().reduce_ct(_chest((200, 41, 2)), np.eye(4))
    assert facts["factor"] == 1
    assert data.shape == (200, 31, 2)  # Y 5:36, no whole-block growth for factor 1
    np.testing.assert_allclose(new_affine[:3, 3], [0.0, 5.0, 0.0])


def test_make_reduced_refuses_another_source(tmp_path, capsys):
    other = make_nifti(tmp_path / "other.nii.gz", _chest(), np.eye(4))
    with pytest.raises(SystemExit):
        _make_reduced().main([str(other), "--out", str(tmp_path / "out.nii.gz")])
    assert re.search(rf"{re.escape(str(other))}: SHA-256 [0-9a-f]{{64}}, expected", capsys.readouterr().err)
    assert not (tmp_path / "out.nii.gz").exists()


def test_make_reduced_names_a_missing_source(tmp_path, capsys):
    missing = tmp_path / "absent.nii.gz"
    with pytest.raises(SystemExit):
        _make_reduced().main([str(missing)])
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_shipped_affine_is_the_sources_after_the_readme_crop_and_2x2_blocks(real_ct):
    # The source (not in the repository): 0.5703125 mm pixels, 5 mm slices, stored L, P, S, its
    # voxel 0 at RAS (146, 325, -777.5). Crop X 0:512, Y 114:512, then 2 x 2 blocks: the new voxel
    # 0 is the centre of source voxels X 0..1, Y 114..115.
    source_affine = np.diag([-0.5703125, -0.5703125, 5.0, 1.0])
    source_affine[:3, 3] = [146.0, 325.0, -777.5]
    to_source = np.diag([2.0, 2.0, 1.0, 1.0])
    to_source[:3, 3] = [0.5, 114.5, 0.0]
    np.testing.assert_allclose(nib.load(real_ct).affine, source_affine @ to_source)
