"""experiments/palette_free_c2st.py: the per-image, per-channel normalisation that hides a palette from the two-sample
test, against the formula written out."""
import sys

import numpy as np

from domainstudio.metrics.degradations import degrade
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "experiments"))
import palette_free_c2st  # noqa: E402


def test_normalise_is_each_channels_z_score_on_the_tests_scale():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    images[1, ..., 2] = 77                                     # a flat channel
    out = palette_free_c2st.normalise(images)
    x = images[0, :, :, 1].astype(float)
    expected = 127.5 + palette_free_c2st.SCALE * (x - x.mean()) / x.std()
    np.testing.assert_allclose(out[0, :, :, 1], expected, rtol=1e-6)
    np.testing.assert_array_equal(out[1, ..., 2], 127.5)      # a flat channel stays at the centre
    np.testing.assert_allclose(out[2].mean(axis=(0, 1)), 127.5, atol=1e-3)
    np.testing.assert_allclose(out[2].std(axis=(0, 1)), palette_free_c2st.SCALE, rtol=1e-4)


def test_a_tint_and_a_wash_out_vanish_and_a_local_artifact_does_not():
    rng = np.random.default_rng(1)
    images = rng.integers(40, 216, (4, 16, 16, 3), dtype=np.uint8)   # away from 0 and 255: the cast is not clipped
    norm = palette_free_c2st.normalise
    for name, strength in (("colour_cast", 0.08), ("wash_out", 0.3)):
        changed = degrade(images, name, strength, seed=0)
        assert np.abs(changed.astype(float) - images).mean() > 5                 # visible before
        assert np.abs(norm(changed) - norm(images)).mean() < 0.05 * palette_free_c2st.SCALE   # rounding only after
    blotched = degrade(images, "blotches", 0.16, seed=0)
    assert np.abs(norm(blotched) - norm(images)).mean() > 0.2 * palette_free_c2st.SCALE
