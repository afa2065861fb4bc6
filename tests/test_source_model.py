"""The source model artifact: a diffusers folder that round-trips; clear errors for what cannot load."""
import numpy as np
import pytest
import torch

from domainstudio.models.source import SchedulerConfig, SourceModelError, build_scheduler, load_source, save_source
from tests.conftest import tiny_unet


def test_save_and_load_round_trip(tmp_path):
    unet, scheduler = tiny_unet(), build_scheduler(SchedulerConfig())
    save_source(unet, scheduler, tmp_path / "m")
    assert (tmp_path / "m" / "unet" / "config.json").exists() and (tmp_path / "m" / "model_index.json").exists()
    loaded, sched = load_source(tmp_path / "m")
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 500])
    with torch.no_grad():
        assert torch.equal(unet(x, t).sample, loaded(x, t).sample)
    assert sched.config.num_train_timesteps == 1000


def test_bare_unet_folder_loads_too(tmp_path):
    """Hub repos such as google/ddpm-ema-celebahq-256 keep the UNet at the top level with scheduler_config.json."""
    unet, scheduler = tiny_unet(), build_scheduler(SchedulerConfig())
    unet.save_pretrained(tmp_path / "bare")
    scheduler.save_pretrained(tmp_path / "bare")
    loaded, _ = load_source(tmp_path / "bare")
    assert list(loaded.config.block_out_channels) == list(unet.config.block_out_channels)


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(SourceModelError, match="not a diffusers DDPM folder"):
        load_source(tmp_path / "x")


def test_unreachable_hub_id_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(SourceModelError, match="hf download google/ddpm-ema-celebahq-256"):
        load_source("google/ddpm-ema-celebahq-256")


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_samples_do_not_depend_on_the_batch_size(eta):
    """Initial noise and (eta > 0) the DDIM variance noise come from per-sample streams: batches of 3 and of 5 give
    the same 5 images, and sample i is the same in a run of 3 as in a run of 5."""
    from domainstudio.models.source import SchedulerConfig, build_scheduler
    from domainstudio.sampling import SampleConfig, ddim_sample

    unet, sched = tiny_unet(), build_scheduler(SchedulerConfig())
    run = lambda n, batch: ddim_sample(unet, sched, SampleConfig(n_samples=n, ddim_steps=3, eta=eta, batch_size=batch,  # noqa: E731
                                                                 precision="fp32", seed=4, device="cpu"))
    five, in_threes = run(5, 5), run(5, 3)
    assert np.array_equal(five, in_threes) and np.array_equal(five[:3], run(3, 3))
    assert not np.array_equal(five[0], five[1])
    if eta > 0:  # the variance noise is used: not the deterministic (eta 0) samples
        deterministic = ddim_sample(unet, sched, SampleConfig(n_samples=5, ddim_steps=3, eta=0.0, batch_size=5, precision="fp32",
                                                              seed=4, device="cpu"))
        assert not np.array_equal(five, deterministic)
