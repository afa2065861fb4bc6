"""The trainer: deterministic by seed, and a killed run resumes to the same final weights."""
import numpy as np
import pytest
import torch

from domainstudio.adapt.objectives import NoisePrediction
from domainstudio.adapt.trainer import TrainConfig, train
from domainstudio.models.source import SchedulerConfig, build_scheduler
from tests.conftest import tiny_unet

CFG = TrainConfig(steps=12, batch_size=4, lr=1e-3, ema_decay=0.9, checkpoint_every=5, log_every=2, seed=7)


def _images():
    return np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    sched = build_scheduler(SchedulerConfig())
    a = train(tiny_unet(), _images(), NoisePrediction(sched), CFG, tmp_path / "a.pt", "f")
    b = train(tiny_unet(), _images(), NoisePrediction(sched), CFG, tmp_path / "b.pt", "f")
    c = train(tiny_unet(), _images(), NoisePrediction(sched), TrainConfig(**{**CFG.__dict__, "seed": 8}), tmp_path / "c.pt", "f")
    assert torch.equal(_weights(a), _weights(b))
    assert not torch.equal(_weights(a), _weights(c))
    assert not torch.equal(_weights(a), _weights(tiny_unet()))  # it trained


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    sched = build_scheduler(SchedulerConfig())
    reference = train(tiny_unet(), _images(), NoisePrediction(sched), CFG, tmp_path / "ref.pt", "f")

    calls = {"n": 0}
    plain = NoisePrediction(sched)

    def dies_at_step_8(unet, x0, generator):
        calls["n"] += 1
        if calls["n"] == 8:
            raise Killed()
        return plain(unet, x0, generator)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Killed):
        train(tiny_unet(), _images(), dies_at_step_8, CFG, ckpt, "f")
    assert torch.load(ckpt, weights_only=False)["step"] == 5
    resumed = train(tiny_unet(), _images(), NoisePrediction(sched), CFG, ckpt, "f")
    assert torch.equal(_weights(resumed), _weights(reference))


def test_checkpoint_of_another_configuration_is_ignored(tmp_path):
    sched = build_scheduler(SchedulerConfig())
    ckpt = tmp_path / "run.pt"
    torch.save({"fingerprint": "other", "step": 11}, ckpt)
    a = train(tiny_unet(), _images(), NoisePrediction(sched), CFG, ckpt, "mine")
    b = train(tiny_unet(), _images(), NoisePrediction(sched), CFG, tmp_path / "fresh.pt", "mine")
    assert torch.equal(_weights(a), _weights(b))


def test_noise_prediction_loss_is_finite_at_every_timestep():
    sched = build_scheduler(SchedulerConfig())
    loss, terms = NoisePrediction(sched)(tiny_unet(), torch.rand(4, 3, 16, 16) * 2 - 1, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and terms["l_simple"] > 0


def test_a_finished_run_continues_when_steps_grow_and_its_snapshots_are_the_shorter_runs(tmp_path):
    """The learning rate is constant after warm-up, so N steps are the first N steps of a longer run: a run of 12
    steps continued to 20 (its checkpoint kept) equals a run of 20, and the snapshot at step 10 equals a 10-step run."""
    from diffusers import UNet2DModel

    sched = build_scheduler(SchedulerConfig())
    longer = TrainConfig(**{**CFG.__dict__, "steps": 20})
    reference = train(tiny_unet(), _images(), NoisePrediction(sched), longer, tmp_path / "ref.pt", "f",
                      snapshot_dir=tmp_path / "snapshots", snapshot_every=10)
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["step10", "step20"]
    ten = train(tiny_unet(), _images(), NoisePrediction(sched), TrainConfig(**{**CFG.__dict__, "steps": 10}), tmp_path / "ten.pt", "f")
    assert torch.equal(_weights(UNet2DModel.from_pretrained(tmp_path / "snapshots" / "step10")), _weights(ten))

    plain = NoisePrediction(sched)

    def dies_at_step_12(unet, x0, generator, calls=[0]):
        calls[0] += 1
        if calls[0] == 12:
            raise Killed()
        return plain(unet, x0, generator)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Killed):  # a run of up to 20 steps stopped after its checkpoint at step 10
        train(tiny_unet(), _images(), dies_at_step_12, longer, ckpt, "f")
    assert torch.load(ckpt, weights_only=False)["step"] == 10
    ended_at_ten = train(tiny_unet(), _images(), plain, TrainConfig(**{**CFG.__dict__, "steps": 10, "checkpoint_every": 0}), ckpt, "f")
    assert torch.equal(_weights(ended_at_ten), _weights(ten))  # steps lowered to the checkpoint: the 10-step model
    continued = train(tiny_unet(), _images(), plain, longer, ckpt, "f")
    assert torch.equal(_weights(continued), _weights(reference))  # steps raised: the 20-step model
    finished = tmp_path / "finished.pt"  # a finished 12-step run that keeps its final state continues to 20 steps
    train(tiny_unet(), _images(), plain, TrainConfig(**{**CFG.__dict__, "steps": 12}), finished, "f", keep_final_checkpoint=True)
    assert torch.load(finished, weights_only=False)["step"] == 12
    assert torch.equal(_weights(train(tiny_unet(), _images(), plain, longer, finished, "f")), _weights(reference))
    shorter = train(tiny_unet(), _images(), plain, TrainConfig(**{**CFG.__dict__, "steps": 8}), ckpt, "f")
    assert torch.equal(_weights(shorter), _weights(train(tiny_unet(), _images(), plain, TrainConfig(**{**CFG.__dict__, "steps": 8}),
                                                         tmp_path / "eight.pt", "f")))  # a checkpoint past the steps is not used


def test_the_training_log_records_training_seconds_across_a_resume(tmp_path):
    import pandas as pd

    sched = build_scheduler(SchedulerConfig())
    train(tiny_unet(), _images(), NoisePrediction(sched), CFG, tmp_path / "a.pt", "f", log_csv=tmp_path / "log.csv")
    elapsed = pd.read_csv(tmp_path / "log.csv")["elapsed_s"]
    assert (elapsed > 0).all() and elapsed.is_monotonic_increasing
