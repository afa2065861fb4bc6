"""The degradations of the calibration against references written from their definitions, the calibration protocol
(floor on several halvings, every degradation and strength once), the sensitivity and spread arithmetic, the
artifact head of the metric backbone, and the verbs' errors before any work."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage

from domainstudio.data import faces
from domainstudio.metrics import degradations as deg
from domainstudio.metrics.calibration import CalibrationConfig, calibrate, method_spread, sensitivity
from domainstudio.metrics.two_sample import TwoSampleConfig
from domainstudio.metrics.sliced_wasserstein import SlicedWassersteinConfig


def _images(domain="babies", n=6, split="reference"):
    return np.stack([np.asarray(faces.render(domain, split, i, 32, 0)[0]) for i in range(n)])


def test_blur_equals_scipys_gaussian_filter():
    x = deg.to_float(_images(n=2)).double()
    for sigma in (0.5, 1.0, 1.5):
        radius = int(np.ceil(3 * sigma))
        ref = np.stack([np.stack([ndimage.gaussian_filter(c, sigma, mode="reflect", truncate=radius / sigma) for c in im]) for im in x.numpy()])
        # scipy's "reflect" repeats the edge pixel (symmetric); torch's repeats none (mirror): compare the interior
        inner = (slice(None), slice(None), slice(radius, -radius), slice(radius, -radius))
        assert np.allclose(deg.gaussian_blur(x, sigma).numpy()[inner], ref[inner], atol=1e-6), sigma


def test_misregistration_moves_red_right_and_blue_left_by_whole_pixels():
    x = deg.to_float(_images(n=2))
    for px in (1, 2, 3):
        y = deg.colour_misregistration(x, float(px))
        assert torch.equal(y[:, 1], x[:, 1])                                  # green stays
        assert torch.equal(y[:, 0, :, px:], x[:, 0, :, :-px])                 # red moved right
        assert torch.equal(y[:, 2, :, :-px], x[:, 2, :, px:])                 # blue moved left
        assert torch.equal(y[:, 0, :, :px], x[:, 0, :, :1].expand(-1, -1, px))  # border replicated


def test_wash_out_and_colour_cast_follow_their_formulas():
    x = deg.to_float(_images(n=3)).double()
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean((1, 2))
    y = deg.wash_out(x, 0.3)
    assert torch.allclose(y, 0.7 * x + 0.3 * grey[:, None, None, None])
    rng = np.random.default_rng(5)
    c = rng.standard_normal((3, 3)); c -= c.mean(1, keepdims=True); c /= np.linalg.norm(c, axis=1, keepdims=True)
    assert torch.allclose(deg.colour_cast(x, 0.08, np.random.default_rng(5)), (x + 0.08 * torch.from_numpy(c)[:, :, None, None]).clamp(0, 1))


def test_every_degradation_is_reproducible_by_seed_and_grows_with_strength():
    x = _images(n=4)
    for name, (_, strengths, _) in deg.DEGRADATIONS.items():
        a, b = deg.degrade(x, name, strengths[1], seed=3), deg.degrade(x, name, strengths[1], seed=3)
        assert a.dtype == np.uint8 and a.shape == x.shape and np.array_equal(a, b), name
        change = [np.abs(deg.degrade(x, name, s, seed=3).astype(float) - x).mean() for s in strengths]
        assert 0 < change[0] < change[-1], (name, change)                     # visible, and more so when stronger
    assert not set(deg.TRAINING_FAMILY) & set(deg.VALIDATION_FAMILY)
    with pytest.raises(ValueError, match="unknown degradation 'sharpen'"):
        deg.degrade(x, "sharpen", 1.0)


class PixelStatistics:
    """A stand-in backbone: FID features are per-channel means and stds at two scales; every image is in domain."""

    def fid_features(self, images):
        x = images.astype(np.float64) / 255
        small = x.reshape(len(x), 16, 2, 16, 2, 3).mean((2, 4))
        return np.concatenate([x.mean((1, 2)), x.std((1, 2)), small.std((1, 2)), np.abs(np.diff(x, axis=2)).mean((1, 2))], 1)

    def predict(self, images):
        return {"domain": np.zeros(len(images), int)}

    def domain_index(self, domain):
        return 0


def test_calibration_measures_the_floor_on_each_split_and_every_degradation_once():
    reference = _images(n=48)
    cfg = CalibrationConfig(n_per_side=24, splits=2, degradations=["blur", "misregistration"])
    c2st = TwoSampleConfig(n_per_side=24, epochs=2, channels=(4,))
    swd = SlicedWassersteinConfig(n_per_side=24, descriptors_per_image=4, directions=16)
    table = calibrate(reference, PixelStatistics(), "babies", cfg, c2st, swd, prdc_k=3, seed=0, log=lambda *_: None)
    floor = table[table["degradation"] == "none"]
    assert list(floor["split"]) == [0, 1] and (floor["family"] == "none").all()
    rows = table[table["degradation"] != "none"]
    assert [(r.degradation, r.strength, r.level, r.family) for r in rows.itertuples()] == [
        ("blur", 0.5, 1, "training"), ("blur", 1.0, 2, "training"), ("blur", 1.5, 3, "training"),
        ("misregistration", 1.0, 1, "validation"), ("misregistration", 2.0, 2, "validation"), ("misregistration", 3.0, 3, "validation")]
    assert (rows["split"] == 0).all() and (table["n_per_side"] == 24).all()
    blur = rows[rows["degradation"] == "blur"]["fid"].to_numpy()
    assert floor["fid"].max() < blur[-1] and blur[0] < blur[-1]              # these features see blur, more when stronger
    swd_blur = rows[rows["degradation"] == "blur"]["swd"].to_numpy()
    assert floor["swd"].max() < swd_blur[-1]                                  # so do the pyramid patches
    with pytest.raises(ValueError, match="evaluate.calibration.degradations: unknown"):
        calibrate(reference, PixelStatistics(), "babies", CalibrationConfig(degradations=["sharpen"]), c2st, swd, 3)


def test_sensitivity_is_the_shift_towards_worse_fidelity_over_the_methods_range():
    table2 = pd.DataFrame({"source": ["measured", "measured", "measured", "reported"], "domain": ["babies"] * 4,
                           "fid": [12.0, 20.0, 16.0, 1.0], "fid_std_seeds": [1.0, 3.0, 2.0, np.nan],
                           "precision": [0.9, 0.5, 0.7, np.nan], "precision_std_seeds": [np.nan] * 4})
    spread = method_spread(table2, "babies")
    assert spread["fid"] == {"min": 12.0, "max": 20.0, "median_std_seeds": 2.0, "methods": 3}   # reported rows left out
    assert spread["precision"]["max"] == 0.9 and np.isnan(spread["precision"]["median_std_seeds"])
    cal = pd.DataFrame({"degradation": ["none", "none", "blur"], "fid": [0.4, 0.6, 4.5], "precision": [0.98, 1.0, 0.79],
                        "kid": [0.0, 0.0, 0.3]})
    out = sensitivity(cal, spread).iloc[0]
    assert out["fid"] == pytest.approx((4.5 - 0.5) / 8.0)                     # +: larger FID is worse
    assert out["precision"] == pytest.approx((0.99 - 0.79) / 0.4)            # -: smaller precision is worse
    assert np.isnan(out["kid"])                                               # no spread: no sensitivity


def test_artifact_head_learns_the_training_family_and_round_trips(tmp_path):
    from domainstudio.metrics.embedded_backbone import BackboneTrainConfig, EmbeddedBackbone, artifact_classes, degrade_batch, train_backbone

    images, labels = degrade_batch(_images(n=40), np.random.default_rng(0))
    assert set(labels) <= set(range(len(artifact_classes()))) and 0 < (labels == 0).mean() < 1
    assert np.array_equal(images[labels == 0], _images(n=40)[labels == 0])   # the clean half is untouched
    sets = {d: (_images(d, 40, "train"), [faces.render(d, "train", i, 32, 0)[1] for i in range(40)]) for d in ("babies", "sketches")}
    net, coder, report = train_backbone(sets, faces.FACTOR_LEVELS, BackboneTrainConfig(steps=30, batch_size=16, artifact_head=True))
    assert report["artifact_classes"] == ["none", "blur", "noise", "jpeg", "resample"] and 0 <= report["artifact_accuracy"] <= 1
    EmbeddedBackbone(net, coder, {"resolution": 32, "report": report, "coder": coder.state()}).save(tmp_path)
    again = EmbeddedBackbone.load(tmp_path)
    assert again.net.artifact_head.out_features == 5
    x = _images(n=3)
    assert np.array_equal(again.fid_features(x), EmbeddedBackbone(net, coder, {"resolution": 32, "report": report}).fid_features(x))


def test_calibrate_verb_refuses_a_bad_configuration_before_any_work(tmp_path, capsys):
    from domainstudio.cli import main

    out = tmp_path / "cal.csv"
    base = ["calibrate", "--domain", "babies", "--reference", str(tmp_path / "nowhere"), "--resolution", "32",
            "--embedded-backbone", str(tmp_path / "nowhere"), "--out", str(out)]
    with pytest.raises(SystemExit, match="evaluate.calibration"):
        main([*base, "--config-json", json.dumps({"splits": 2, "strengths": [1]})])
    with pytest.raises(SystemExit, match="evaluate.c2st takes its seed"):
        main([*base, "--c2st-json", json.dumps({"seed": 3})])
    assert not out.exists()
