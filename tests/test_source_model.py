"""The source model artifact: a diffusers folder that round-trips; clear errors for what cannot load."""
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
