"""The CLI verbs: bad input stops before training with the file named, and leaves no output behind."""
import json

import numpy as np
import pytest
from PIL import Image

from domainstudio.cli import main
from domainstudio.models.source import SchedulerConfig, build_scheduler, save_source
from tests.conftest import noise_image_folder, tiny_unet


@pytest.fixture
def source(tmp_path):
    save_source(tiny_unet(16), build_scheduler(SchedulerConfig()), tmp_path / "source")
    return tmp_path / "source"



def _adapt(source, images, out, tmp_path, method="domainstudio", shots=4, train=None, options=None):
    cfg = {"train": {"steps": 3, "batch_size": 4, "checkpoint_every": 0, **(train or {})},
           "weights": {"l_img": 1.0, "l_hf": 0.5, "l_hfmse": 0.05}, "options": {"pairwise_max_t": None, **(options or {})}}
    return main(["adapt", "--source", str(source), "--images", str(images), "--shots", str(shots), "--method", method,
                 "--resolution", "16", "--config-json", json.dumps(cfg), "--checkpoint", str(tmp_path / "c.pt"), "--out", str(out)])


def test_adapt_then_sample_end_to_end(source, tmp_path):
    images = noise_image_folder(tmp_path / "k", 4)
    assert _adapt(source, images, tmp_path / "adapted", tmp_path) == 0
    record = json.loads((tmp_path / "adapted" / "adaptation.json").read_text())
    assert record["weights"] == {"l_img": 1.0, "l_hf": 0.5, "l_hfmse": 0.05, "l_vlb": 0.0} and record["method"] == "domainstudio"
    assert record["learned_variance"] is False  # a fixed-variance source: L_vlb does not apply
    assert not (tmp_path / "c.pt").exists()
    cfg = json.dumps({"n_samples": 5, "ddim_steps": 2, "batch_size": 2})
    assert main(["sample", "--model", str(tmp_path / "adapted"), "--out", str(tmp_path / "s"), "--config-json", cfg]) == 0
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 5 and (tmp_path / "s" / "grid.png").exists()


def test_corrupt_image_stops_adaptation_before_training(source, tmp_path, capsys):
    images = noise_image_folder(tmp_path / "k", 4)
    (images / "02.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SystemExit, match="02.png"):
        _adapt(source, images, tmp_path / "adapted", tmp_path)
    assert not (tmp_path / "adapted").exists() and not (tmp_path / "c.pt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial folder either


def test_too_few_images_and_batch_of_one(source, tmp_path):
    images = noise_image_folder(tmp_path / "k", 3)
    with pytest.raises(SystemExit, match="has 3 images but 4 are needed"):
        _adapt(source, images, tmp_path / "a", tmp_path)
    with pytest.raises(SystemExit, match="batch size of at least 3"):
        _adapt(source, images, tmp_path / "b", tmp_path, shots=3, train={"batch_size": 1})
    assert _adapt(source, images, tmp_path / "c", tmp_path, method="ddpm-ft", shots=3, train={"batch_size": 1}) == 0


def test_missing_source_model_is_named(tmp_path, capsys):
    images = noise_image_folder(tmp_path / "k", 4)
    assert _adapt(tmp_path / "nowhere", images, tmp_path / "a", tmp_path) == 2
    assert "nowhere" in capsys.readouterr().err


def test_source_above_t_hands_the_noisy_steps_to_the_source_model(source, tmp_path):
    images = noise_image_folder(tmp_path / "k", 4)
    assert _adapt(source, images, tmp_path / "adapted", tmp_path, train={"steps": 5, "lr": 1e-2}) == 0

    def sample(model, out, **cfg):
        args = ["sample", "--model", str(model), "--out", str(tmp_path / out), "--source-model", str(source),
                "--config-json", json.dumps({"n_samples": 3, "ddim_steps": 3, **cfg})]
        assert main(args) == 0
        return [np.asarray(Image.open(p)) for p in sorted((tmp_path / out / "images").glob("*.png"))]

    source_only = sample(source, "s")
    adapted = sample(tmp_path / "adapted", "a")
    all_source = sample(tmp_path / "adapted", "h0", source_above_t=0)   # every step by the source model
    none_source = sample(tmp_path / "adapted", "h1000", source_above_t=1000)  # no step by the source model
    assert all(np.array_equal(x, y) for x, y in zip(all_source, source_only))
    assert all(np.array_equal(x, y) for x, y in zip(none_source, adapted))
    assert not all(np.array_equal(x, y) for x, y in zip(adapted, source_only))
    with pytest.raises(SystemExit, match="source-model"):
        main(["sample", "--model", str(source), "--out", str(tmp_path / "x"), "--config-json", json.dumps({"source_above_t": 500})])


def test_the_cli_error_handling_does_not_import_diffusers():
    """main() catches SourceModelError for every verb, and the GAN trainer writes its train log; importing diffusers
    for either cost each metric and GAN job ~6 s."""
    import subprocess
    import sys

    code = ("import sys; import domainstudio.cli; from domainstudio.models import SourceModelError; "
            "import domainstudio.data.images, domainstudio.devices, domainstudio.metrics.fid, domainstudio.metrics.lpips_embedding; "
            "from domainstudio.models.source import SourceModelError as S; "
            "assert S is SourceModelError")
    subprocess.run([sys.executable, "-c", code], check=True)
    light = ("import sys, domainstudio.cli, domainstudio.models, domainstudio.data.images, domainstudio.devices, "
             "domainstudio.metrics.fid, domainstudio.metrics.lpips_embedding, domainstudio.gan.train; "
             "print('diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", light], check=True, capture_output=True, text=True).stdout.strip()
    assert out == "False"


def test_adaptation_records_how_many_samples_entered_the_pairwise_terms(source, tmp_path):
    """Every step logs pairwise_n; adaptation.json gets the fraction of steps with at least 3 samples in the window."""
    import pandas as pd

    images = noise_image_folder(tmp_path / "k", 4)
    assert _adapt(source, images, tmp_path / "a", tmp_path, train={"steps": 12, "log_every": 1}, options={"pairwise_min_t": 300}) == 0
    log = pd.read_csv(tmp_path / "a" / "train_log.csv")
    assert list(log["step"]) == list(range(1, 13)) and log["pairwise_n"].between(0, 4).all()
    record = json.loads((tmp_path / "a" / "adaptation.json").read_text())
    assert record["pairwise_active_fraction"] == pytest.approx((log["pairwise_n"] >= 3).mean())
    assert record["pairwise_mean_samples"] == pytest.approx(log["pairwise_n"].mean()) and record["precision"] in ("bf16", "fp32")
    # the terms are logged exactly at the steps where at least 3 samples entered
    assert (log["l_img"].notna() == (log["pairwise_n"] >= 3)).all()
    assert 0 < record["pairwise_active_fraction"] < 1 and log["pairwise_n"].nunique() > 1  # the t >= 300 window varies


def test_every_verb_prints_its_help():
    """argparse formats each help string with %: a literal percent sign in one verb's help broke `domainstudio --help`."""
    import argparse

    from domainstudio.cli import build_parser

    parser = build_parser()
    assert "claims" in parser.format_help()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(verbs) > 20
    for name, sub in verbs.items():
        assert name in sub.format_help()
