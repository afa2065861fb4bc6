"""Device and precision choices: CUDA is picked when torch sees one (mocked here: no GPU on CI), fp16 gets a
GradScaler on CUDA and is refused on the CPU before any compute, through the trainer, the sampler and the CLI."""
import json

import numpy as np
import pytest
import torch

from domainstudio.adapt.objectives import NoisePrediction
from domainstudio.adapt.trainer import TrainConfig, train
from domainstudio.cli import main
from domainstudio.devices import DeviceError, attention_kernel, autocast, check_precision, grad_scaler, resolve_device
from domainstudio.models.source import SchedulerConfig, build_scheduler, save_source
from domainstudio.sampling import SampleConfig, ddim_sample
from tests.conftest import tiny_unet


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_picks_cuda_when_torch_sees_a_gpu(fake_cuda):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")


def test_auto_falls_back_to_the_cpu_and_explicit_cuda_is_refused(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceError, match="device: 'cuda' asked for, but torch sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="not a torch device"):
        resolve_device("gpu0")


def test_fp16_scales_the_loss_on_cuda_only(fake_cuda):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert grad_scaler(cuda, "fp16").is_enabled()
    assert not grad_scaler(cuda, "bf16").is_enabled() and not grad_scaler(cuda, "fp32").is_enabled()
    assert not grad_scaler(cpu, "bf16").is_enabled()
    with pytest.raises(DeviceError, match="fp16 needs a CUDA GPU"):
        grad_scaler(cpu, "fp16")
    with pytest.raises(DeviceError, match="precision must be auto or one of fp32, bf16, fp16"):
        check_precision(cuda, "int8")


def test_autocast_dtypes():
    cpu = torch.device("cpu")
    a = torch.randn(4, 4)
    with autocast(cpu, "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(cpu, "fp32"):
        assert (a @ a).dtype == torch.float32


def test_fp16_on_cpu_is_refused_before_training_or_sampling(no_cuda, tmp_path):
    calls = []

    def objective(unet, x0, generator):
        calls.append(1)
        return NoisePrediction(build_scheduler(SchedulerConfig()))(unet, x0, generator)

    images = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(DeviceError, match="fp16 needs a CUDA GPU"):
        train(tiny_unet(), images, objective, TrainConfig(steps=2, batch_size=2, precision="fp16"), tmp_path / "c.pt", "f")
    assert calls == [] and not (tmp_path / "c.pt").exists()
    with pytest.raises(DeviceError, match="fp16 needs a CUDA GPU"):
        ddim_sample(tiny_unet(), build_scheduler(SchedulerConfig()), SampleConfig(n_samples=2, ddim_steps=2, precision="fp16"))


def test_cli_refuses_fp16_on_cpu_with_a_clear_error(no_cuda, tmp_path, capsys):
    save_source(tiny_unet(), build_scheduler(SchedulerConfig()), tmp_path / "model")
    cfg = json.dumps({"n_samples": 2, "ddim_steps": 2, "batch_size": 2, "precision": "fp16", "device": "cpu"})
    assert main(["sample", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "s"), "--config-json", cfg]) == 2
    assert "error: precision: fp16 needs a CUDA GPU (it runs on cpu)" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_scaler_path_leaves_fp32_training_unchanged(tmp_path):
    """With the scaler disabled (fp32/bf16) every step equals a plain backward + optimizer step."""
    sched = build_scheduler(SchedulerConfig())
    cfg = TrainConfig(steps=3, batch_size=2, lr=1e-3, ema_decay=0.0, grad_clip=0.0, hflip=False, checkpoint_every=0, device="cpu",
                      precision="fp32")
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    trained = train(tiny_unet(), images, NoisePrediction(sched), cfg, tmp_path / "a.pt", "f")

    unet, objective = tiny_unet(), NoisePrediction(sched)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0, fused=True)
    generator = torch.Generator().manual_seed(cfg.seed)
    data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    for _ in range(cfg.steps):
        x0 = data[torch.randperm(4, generator=generator)[:2]].float() / 127.5 - 1.0
        with attention_kernel(torch.device("cpu")):  # the trainer's kernel on the CPU
            loss, _ = objective(unet, x0, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    for a, b in zip(trained.parameters(), unet.parameters()):
        assert torch.equal(a, b)


def test_cpu_training_uses_the_math_attention_kernel_and_it_computes_the_same_gradients():
    """attention_kernel(cpu) turns the flash kernel off (benchmarks/train_step.py: why); CUDA keeps PyTorch's
    choice. In fp32 the UNet's mid-block attention gives the same loss and gradients under both kernels."""
    with attention_kernel(torch.device("cpu")):
        assert not torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.math_sdp_enabled()
    assert torch.backends.cuda.flash_sdp_enabled()
    with attention_kernel(torch.device("cuda")):
        assert torch.backends.cuda.flash_sdp_enabled()

    x, t = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 250, 500, 999])
    grads = []
    for kernel in (attention_kernel(torch.device("cuda")), attention_kernel(torch.device("cpu"))):
        unet = tiny_unet()
        with kernel:
            loss = unet(x, t).sample.square().mean()
        loss.backward()
        grads.append([p.grad for p in unet.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_auto_precision_is_bf16_only_where_the_hardware_computes_it(monkeypatch, tmp_path):
    from domainstudio import devices

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\n")
    assert devices.cpu_flags.__wrapped__(str(cpuinfo)) == {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"}
    assert devices.cpu_flags.__wrapped__(str(tmp_path / "absent")) == frozenset()
    cpu = torch.device("cpu")
    for flags, expected in [({"avx512f", "avx512_bf16"}, "bf16"), ({"amx_bf16", "amx_tile"}, "bf16"),
                            ({"avx512f", "avx2"}, "fp32"), (set(), "fp32")]:
        monkeypatch.setattr(devices, "cpu_flags", lambda flags=frozenset(flags): flags)
        assert devices.resolve_precision(cpu, "auto") == expected, flags
        assert devices.resolve_precision(cpu, "fp32") == "fp32" and devices.resolve_precision(cpu, "bf16") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert devices.resolve_precision(torch.device("cuda"), "auto") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert devices.resolve_precision(torch.device("cuda"), "auto") == "bf16"
    with pytest.raises(DeviceError, match="precision must be auto or one of"):
        devices.resolve_precision(cpu, "bf17")


def test_auto_precision_is_what_autocast_and_the_trainer_use(monkeypatch, tmp_path, caplog):
    from domainstudio import devices

    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512f"}))  # no bf16 instructions: fp32
    with autocast(torch.device("cpu"), "auto"):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    with autocast(torch.device("cpu"), "auto"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    with caplog.at_level("INFO"):
        train(tiny_unet(), images, NoisePrediction(build_scheduler(SchedulerConfig())),
              TrainConfig(steps=1, batch_size=2, precision="auto", device="cpu"), tmp_path / "ckpt.pt", "f")
    assert "in bf16 (precision: auto)" in caplog.text
