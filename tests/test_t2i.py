"""Text-to-image DomainStudio on the offline tiny Stable Diffusion pipeline."""
import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from domainstudio.adapt import losses
from domainstudio.adapt.objectives import DomainStudioWeights
from domainstudio.params.checks import ConfigError, check_t2i_config
from domainstudio.t2i import objective as t2i_objective
from domainstudio.t2i.objective import DreamBoothDomainStudio, T2IBatch, T2IOptions
from domainstudio.t2i.pipeline import T2IModelError, encode_prompt, load_t2i_pipeline
from domainstudio.t2i.sampling import T2ISampleConfig, generate
from domainstudio.t2i.tiny import build_tiny_pipeline
from domainstudio.t2i.train import T2ITrainConfig, train_t2i
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("t2i") / "tiny-sd"
    build_tiny_pipeline(out, resolution=32, seed=0)
    return out


@pytest.fixture
def pipe(tiny_dir):
    torch.set_num_threads(1)
    return load_t2i_pipeline(tiny_dir)


def fixed_batch(pipe, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((2 * n, 3, 32, 32), generator=g) * 2 - 1
    with torch.no_grad():
        z = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
    cpu = torch.device("cpu")
    return T2IBatch(z_ins=z[:n], z_cls=z[n:], x_ins=x[:n], c_ins=encode_prompt(pipe, "a sks face", cpu),
                    c_cls=encode_prompt(pipe, "a face", cpu))


def perturbed(unet, scale=0.05, seed=1):
    g = torch.Generator().manual_seed(seed)
    other = copy.deepcopy(unet)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return other


def test_tiny_pipeline_is_a_loadable_stable_diffusion_folder(tiny_dir, pipe):
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "model_index.json"):
        assert (tiny_dir / part).exists()
    tokens = pipe.tokenizer.convert_ids_to_tokens(pipe.tokenizer("a sks face").input_ids)
    assert tokens == ["<|startoftext|>", "a</w>", "sks</w>", "face</w>", "<|endoftext|>"]
    assert type(pipe.unet).__name__ == "UNet2DConditionModel" and type(pipe.text_encoder).__name__ == "CLIPTextModel"
    assert pipe.vae_scale_factor == 4


def test_unreachable_hub_id_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(T2IModelError, match=r"runwayml/stable-diffusion-v1-5.*hf download runwayml/stable-diffusion-v1-5"):
        load_t2i_pipeline("runwayml/stable-diffusion-v1-5")


def test_folder_that_is_not_a_pipeline_is_refused(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(T2IModelError, match=str(tmp_path)):
        load_t2i_pipeline(tmp_path)
    with pytest.raises(T2IModelError, match="not a hub id"):
        load_t2i_pipeline("no-such-folder")


def test_the_shared_terms_are_the_unconditional_functions(pipe, monkeypatch):
    assert t2i_objective.losses is losses
    called = {}
    for name in ("predicted_x0", "haar_highpass", "relative_distance_loss", "hf_reconstruction_loss"):
        original = getattr(losses, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            called[_name] = called.get(_name, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(losses, name, spy)
    obj = DreamBoothDomainStudio(pipe.scheduler, pipe.vae, pipe.unet, DomainStudioWeights(1.0, 1.0, 1.0))
    _, terms = obj(perturbed(pipe.unet), fixed_batch(pipe), torch.Generator().manual_seed(0))
    assert set(terms) == {"l_instance", "l_prior", "l_img", "l_hf", "l_hfmse"}
    assert called["relative_distance_loss"] == 2 and called["hf_reconstruction_loss"] == 1
    assert called["haar_highpass"] >= 2 and called["predicted_x0"] >= 2


def test_prior_preservation_loss_by_hand(pipe):
    """L = MSE(instance half) + prior_weight * MSE(class half), with the t and eps the objective draws."""
    batch, n, sched, unet = fixed_batch(pipe), 3, pipe.scheduler, pipe.unet
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, sched.config.num_train_timesteps, (2 * n,), generator=g)
    noise = torch.randn((2 * n, *batch.z_ins.shape[1:]), generator=g)
    with torch.no_grad():
        z_t = sched.add_noise(torch.cat([batch.z_ins, batch.z_cls]), noise, t)
        mse_ins = F.mse_loss(unet(z_t[:n], t[:n], batch.c_ins.expand(n, -1, -1)).sample, noise[:n]).item()
        mse_cls = F.mse_loss(unet(z_t[n:], t[n:], batch.c_cls.expand(n, -1, -1)).sample, noise[n:]).item()
        results = {}
        for w in (1.0, 0.5, 0.0):
            obj = DreamBoothDomainStudio(sched, pipe.vae, None, DomainStudioWeights(), T2IOptions(prior_weight=w))
            loss, terms = obj(unet, batch, torch.Generator().manual_seed(7))
            results[w] = loss.item()
            assert terms["l_instance"] == pytest.approx(mse_ins, rel=1e-4)
            assert terms["l_prior"] == pytest.approx(mse_cls, rel=1e-4)
    assert results[1.0] == pytest.approx(mse_ins + mse_cls, rel=1e-4)
    assert results[0.5] == pytest.approx(mse_ins + 0.5 * mse_cls, rel=1e-4)
    assert results[0.0] == pytest.approx(mse_ins, rel=1e-4) and results[0.0] < results[0.5] < results[1.0]


def test_pairwise_terms_vanish_when_adapted_equals_source(pipe):
    obj = DreamBoothDomainStudio(pipe.scheduler, pipe.vae, pipe.unet, DomainStudioWeights(1.0, 1.0, 0.0))
    batch = fixed_batch(pipe)
    _, same = obj(copy.deepcopy(pipe.unet), batch, torch.Generator().manual_seed(3))
    assert abs(same["l_img"]) < 1e-6 and abs(same["l_hf"]) < 1e-6
    loss, differ = obj(perturbed(pipe.unet), batch, torch.Generator().manual_seed(3))
    assert differ["l_img"] > 1e-6 and differ["l_hf"] > 1e-6
    assert torch.isfinite(loss)


def test_pairwise_terms_reach_the_unet_through_the_decoder(pipe):
    batch, adapted = fixed_batch(pipe), perturbed(pipe.unet)

    def grad(weights):
        adapted.zero_grad()
        obj = DreamBoothDomainStudio(pipe.scheduler, pipe.vae, pipe.unet, weights)
        obj(adapted, batch, torch.Generator().manual_seed(5))[0].backward()
        return torch.cat([p.grad.flatten() for p in adapted.parameters()]).clone()

    plain, full = grad(DomainStudioWeights()), grad(DomainStudioWeights(100.0, 100.0, 0.1))
    assert torch.isfinite(full).all() and not torch.allclose(plain, full)
    assert all(not p.requires_grad for p in pipe.vae.parameters())


def test_class_half_reference_is_the_official_pairing(pipe):
    """The official release compares the instance half with the class half: not zero for identical models."""
    obj = DreamBoothDomainStudio(pipe.scheduler, pipe.vae, None, DomainStudioWeights(1.0, 0.0, 0.0),
                                 T2IOptions(pairwise_reference="class-half"))
    _, terms = obj(copy.deepcopy(pipe.unet), fixed_batch(pipe), torch.Generator().manual_seed(3))
    assert terms["l_img"] > 1e-6


def test_objective_refuses_bad_settings(pipe):
    with pytest.raises(ValueError, match="batch size of at least 3"):
        DreamBoothDomainStudio(pipe.scheduler, pipe.vae, pipe.unet, DomainStudioWeights(1.0, 0, 0), batch_size=1)
    with pytest.raises(ValueError, match="pairwise_reference"):
        DreamBoothDomainStudio(pipe.scheduler, pipe.vae, pipe.unet, DomainStudioWeights(), T2IOptions(pairwise_reference="x"))
    with pytest.raises(ValueError, match="frozen source"):
        DreamBoothDomainStudio(pipe.scheduler, pipe.vae, None, DomainStudioWeights(1.0, 0, 0))
    with pytest.raises(ValueError, match="t2i.options.pairwise_reduction"):
        T2IOptions(pairwise_reduction="max")
    with pytest.raises(ValueError, match="t2i.options.haar"):
        T2IOptions(haar="db2")


def _train(tiny_dir, seed, weights=DomainStudioWeights(100.0, 100.0, 0.1)):
    pipe = load_t2i_pipeline(tiny_dir)
    rng = np.random.default_rng(0)
    instance = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    classes = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    source = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    unet = train_t2i(pipe, instance, classes, "a sks face", "a face", weights, T2IOptions(),
                     T2ITrainConfig(steps=2, batch_size=3, lr=1e-3, seed=seed))
    assert all(torch.equal(v, pipe.unet.state_dict()[k]) for k, v in source.items())  # the source stays frozen
    return torch.cat([p.flatten() for p in unet.parameters()])


def test_training_is_deterministic_by_seed(tiny_dir):
    torch.set_num_threads(1)
    a, b, c = _train(tiny_dir, 0), _train(tiny_dir, 0), _train(tiny_dir, 1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_fp16_loss_scaling_is_wired_through_the_t2i_trainer(tiny_dir, monkeypatch):
    """fp16 on the CPU is refused before any compute; where a scaler is on (fp16 on CUDA), the loss is scaled, the
    gradients unscaled before clipping and the step taken through it: with an exact power-of-two scale (a CPU scaler
    here, as no GPU is on CI) the trained weights equal those of an unscaled run."""
    from domainstudio import training
    from domainstudio.devices import DeviceError

    torch.set_num_threads(1)
    pipe = load_t2i_pipeline(str(tiny_dir))
    with pytest.raises(DeviceError, match="fp16 needs a CUDA GPU"):
        train_t2i(pipe, np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 32, 32, 3), np.uint8), "a sks face", "a face",
                  DomainStudioWeights(), T2IOptions(), T2ITrainConfig(steps=1, batch_size=3, precision="fp16", device="cpu"))
    plain = _train(tiny_dir, 0)
    scalers = []

    def scaled(device, precision):
        scalers.append(torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=1000))
        return scalers[-1]

    monkeypatch.setattr(training, "grad_scaler", scaled)
    assert torch.equal(_train(tiny_dir, 0), plain)
    assert len(scalers) == 1 and scalers[0].get_scale() == 2.0 ** 10  # used, and no step was skipped as inf/nan


def test_samples_are_deterministic_and_batch_independent(pipe):
    cfg = T2ISampleConfig(prompts=["a sks face", "a face"], n_per_prompt=2, steps=2, batch_size=4, seed=0)
    a, prompt_of = generate(pipe, cfg, 32)
    b, _ = generate(pipe, T2ISampleConfig(**{**cfg.__dict__, "batch_size": 1}), 32)
    c, _ = generate(pipe, T2ISampleConfig(**{**cfg.__dict__, "seed": 1}), 32)
    assert a.shape == (4, 32, 32, 3) and a.dtype == np.uint8 and prompt_of == [0, 0, 1, 1]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # batched vs single: float rounding at most
    assert not np.array_equal(a, c)


def _config(**t2i):
    import yaml

    config = yaml.safe_load((ROOT / "params.yaml").read_text())
    config["t2i"] = {**config["t2i"], "enabled": True, **t2i}
    return config


def test_config_checks_name_the_parameter():
    check_t2i_config(_config())
    with pytest.raises(ConfigError, match="t2i.domains"):
        check_t2i_config(_config(domains=["cats"]))
    with pytest.raises(ConfigError, match="t2i.shots"):
        check_t2i_config(_config(shots=[3]))
    with pytest.raises(ConfigError, match="t2i.train.batch_size"):
        check_t2i_config(_config(train={"batch_size": 1}))
    with pytest.raises(ConfigError, match="t2i.pipeline"):
        check_t2i_config(_config(pipeline="stable-diffusion"))
    check_t2i_config({**_config(domains=["cats"]), "t2i": {**_config(domains=["cats"])["t2i"], "enabled": False}})


def test_cli_adapt_and_sample_write_pipeline_and_sample_folders(tiny_dir, tmp_path):
    from domainstudio.cli import main
    from domainstudio.data.images import save_images

    rng = np.random.default_rng(0)
    save_images(rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8), tmp_path / "shots")  # upsampled to 32 px
    common = ["--threads", "1"]
    assert main(["t2i-class-images", "--pipeline", str(tiny_dir), "--prompt", "a face", "--count", "3", "--resolution", "32",
                 "--config-json", json.dumps({"steps": 2}), "--out", str(tmp_path / "class"), *common]) == 0
    cfg = {"train": {"steps": 2, "batch_size": 2}, "weights": {"l_img": 1.0, "l_hf": 1.0, "l_hfmse": 0.1},
           "options": {"pairwise_reduction": "mean", "haar": "official", "timesteps": "shared"},
           "instance_prompt": "a sks face", "class_prompt": "a face"}
    assert main(["t2i-adapt", "--pipeline", str(tiny_dir), "--instance-images", str(tmp_path / "shots"), "--shots", "3",
                 "--class-images", str(tmp_path / "class"), "--method", "dreambooth", "--resolution", "32",
                 "--config-json", json.dumps(cfg), "--out", str(tmp_path / "model"), *common]) == 0
    record = json.loads((tmp_path / "model" / "adaptation.json").read_text())
    assert record["weights"] == {"l_img": 0.0, "l_hf": 0.0, "l_hfmse": 0.0, "l_vlb": 0.0}  # dreambooth ignores the DomainStudio weights
    assert {k: record["options"][k] for k in ("pairwise_reduction", "haar", "timesteps")} == cfg["options"]
    assert "l_img" not in (tmp_path / "model" / "train_log.csv").read_text()
    assert main(["t2i-sample", "--model", str(tmp_path / "model"), "--resolution", "32", "--config-json",
                 json.dumps({"prompts": ["a sks face"], "n_per_prompt": 3, "steps": 2}), "--out", str(tmp_path / "s"), *common]) == 0
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 3 and (tmp_path / "s" / "grid.png").exists()
    assert json.loads((tmp_path / "s" / "sampling.json").read_text())["prompt_of_image"] == [0, 0, 0]
    assert main(["t2i-adapt", "--pipeline", "owner/missing-model", "--instance-images", str(tmp_path / "shots"), "--shots", "3",
                 "--class-images", str(tmp_path / "class"), "--method", "dreambooth", "--resolution", "32",
                 "--config-json", json.dumps(cfg), "--out", str(tmp_path / "m2"), *common]) == 2
    with pytest.raises(SystemExit, match="unknown text-to-image method"):
        main(["t2i-adapt", "--pipeline", str(tiny_dir), "--instance-images", str(tmp_path / "shots"), "--shots", "3",
              "--class-images", str(tmp_path / "class"), "--method", "ddpm-ft", "--resolution", "32",
              "--config-json", json.dumps(cfg), "--out", str(tmp_path / "m3"), *common])


@pytest.mark.slow
def test_hub_id_loads_from_the_local_cache_offline(tiny_dir, tmp_path):
    """The real path: a hub id resolved from the Hugging Face cache with no network (the tiny pipeline stands in).
    In a subprocess, because huggingface_hub reads HF_HOME and HF_HUB_OFFLINE when it is imported."""
    import os
    import shutil
    import subprocess
    import sys

    repo = tmp_path / "hf" / "hub" / "models--tester--tiny-sd"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_dir, repo / "snapshots" / commit)
    code = ("from domainstudio.t2i.pipeline import load_t2i_pipeline, T2IModelError\n"
            "pipe = load_t2i_pipeline('tester/tiny-sd')\n"
            "print(type(pipe).__name__, pipe.unet.config.sample_size)\n"
            "try:\n    load_t2i_pipeline('tester/other-sd')\nexcept T2IModelError as err:\n    print(err)\n")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "StableDiffusionPipeline 8"
    assert "tester/other-sd" in lines[1] and "hf download tester/other-sd" in lines[1]


def test_a_v_prediction_pipeline_is_refused_before_any_compute(tiny_dir, tmp_path):
    import shutil

    folder = tmp_path / "v-pred"
    shutil.copytree(tiny_dir, folder)
    config = folder / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "prediction_type": "v_prediction"}))
    with pytest.raises(T2IModelError, match="prediction_type is 'v_prediction'"):
        load_t2i_pipeline(folder)


RELEASE_T2I = T2IOptions(pairwise_reference="class-half", kl_direction="official", pairwise_reduction="mean", haar="official",
                         hfmse_weighting="none", timesteps="shared", reference_gradient="flow")


@pytest.mark.parametrize("options", [T2IOptions(), RELEASE_T2I, T2IOptions(hfmse_weighting="abar"),
                                     T2IOptions(pairwise_reference="class-half", hfmse_weighting="abar", prior_weight=0.5),
                                     T2IOptions(pairwise_reduction="mean", haar="official", hfmse_weighting="abar", timesteps="shared")],
                         ids=["default", "release", "abar", "class-half-abar", "source-mean-official-shared"])
def test_t2i_terms_equal_the_written_out_equations(pipe, options):
    """Every term of the text-to-image objective recomputed from its equation, with the t and eps the objective
    draws: DreamBooth's two MSEs, L_img and L_hf on decoded x0 (reference: the pairwise KL written out in float64
    loops, summed over i or, ``pairwise_reduction: mean``, averaged over the n (n - 1) entries), hf the Haar
    high-pass written out per 2x2 block in either convention (``haar``), L_hfmse = (1/n) sum_i w_i mean_pixels
    (hf(D(x0_hat_i)) - hf(x_i))^2 over the instance half, w_i = 1 (``hfmse_weighting: none``) or abar of the
    instance sample's own t (``abar``). ``timesteps: shared`` is the release's two passes (train_domainstudio.py
    l. 862-966): the MSEs at a t per sample, the DomainStudio terms at one t for the batch, both with the same eps."""
    from tests.test_term_values import reference_haar_highpass, reference_relative_distance

    batch, n, sched, unet = fixed_batch(pipe), 3, pipe.scheduler, perturbed(pipe.unet)
    g = torch.Generator().manual_seed(11)
    shared = options.timesteps == "shared"
    steps = sched.config.num_train_timesteps
    t_terms = torch.randint(0, steps, (1,), generator=g).expand(2 * n) if shared else None
    t = torch.randint(0, steps, (2 * n,), generator=g)
    t_terms = t_terms if shared else t
    noise = torch.randn((2 * n, *batch.z_ins.shape[1:]), generator=g)
    with torch.no_grad():
        z0 = torch.cat([batch.z_ins, batch.z_cls])
        cond = torch.cat([batch.c_ins.expand(n, -1, -1), batch.c_cls.expand(n, -1, -1)])
        eps = unet(sched.add_noise(z0, noise, t), t, cond).sample                      # the MSEs' pass
        z_t = sched.add_noise(z0, noise, t_terms)                                       # the terms' pass
        eps_terms = unet(z_t, t_terms, cond).sample
        abar = sched.alphas_cumprod[t_terms].view(-1, 1, 1, 1).double()
        x0 = ((z_t.double() - (1 - abar).sqrt() * eps_terms.double()) / abar.sqrt()).float()  # DDPM eq. 15
        decode = lambda z: pipe.vae.decode(z / pipe.vae.config.scaling_factor).sample.float()  # noqa: E731
        img_ins, img_cls = decode(x0[:n]), decode(x0[n:])
        if options.pairwise_reference == "source":
            eps_src = pipe.unet(z_t[n:], t_terms[n:], cond[n:]).sample.double()
            x0_src = ((z_t[n:].double() - (1 - abar[n:]).sqrt() * eps_src) / abar[n:].sqrt()).float()
            ada, ref = img_cls.numpy(), decode(x0_src).numpy()
        else:
            ada, ref = img_ins.numpy(), img_cls.numpy()
        if shared:  # the MSE at the terms' one t instead would be another number
            wrong_mse = float(((unet(z_t[:n], t_terms[:n], cond[:n]).sample - noise[:n]) ** 2).mean())
    haar, reduction, direction = options.haar, options.pairwise_reduction, options.kl_direction
    hf_ins, hf_x = (reference_haar_highpass(x.numpy().astype(np.float64), haar) for x in (img_ins, batch.x_ins))
    weight = [float(sched.alphas_cumprod.double()[t_terms[i]]) if options.hfmse_weighting == "abar" else 1.0 for i in range(n)]
    expected = {
        "l_instance": float(((eps[:n] - noise[:n]) ** 2).mean()), "l_prior": float(((eps[n:] - noise[n:]) ** 2).mean()),
        "l_img": reference_relative_distance(ada, ref, direction, reduction),
        "l_hf": reference_relative_distance(reference_haar_highpass(ada.astype(np.float64), haar),
                                            reference_haar_highpass(ref.astype(np.float64), haar), direction, reduction),
        "l_hfmse": sum(weight[i] * float(((hf_ins[i] - hf_x[i]) ** 2).mean()) for i in range(n)) / n,
    }
    obj = DreamBoothDomainStudio(sched, pipe.vae, pipe.unet, DomainStudioWeights(2.0, 3.0, 0.5), options)
    loss, terms = obj(unet, batch, torch.Generator().manual_seed(11))
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=2e-3, abs=1e-7), name
    total = (expected["l_instance"] + options.prior_weight * expected["l_prior"] + 2.0 * expected["l_img"] + 3.0 * expected["l_hf"]
             + 0.5 * expected["l_hfmse"])
    assert loss.item() == pytest.approx(total, rel=2e-3)
    if options.hfmse_weighting == "abar":  # abar of the class half's t (shared: the MSEs' t) would move L_hfmse far
        other = [float(sched.alphas_cumprod.double()[t[i] if shared else t[n + i]]) for i in range(n)]
        wrong = sum(other[i] * float(((hf_ins[i] - hf_x[i]) ** 2).mean()) for i in range(n)) / n
        assert abs(wrong - expected["l_hfmse"]) > 1e-2 * expected["l_hfmse"]
    if shared:
        assert abs(wrong_mse - expected["l_instance"]) > 1e-2 * expected["l_instance"]
    if reduction == "mean":  # the options reach the terms: sum and the other Haar give other numbers
        assert abs(reference_relative_distance(ada, ref, direction, "sum") - expected["l_img"]) > 1e-2 * expected["l_img"]
    if haar == "official":
        other_hf = reference_haar_highpass(img_ins.numpy().astype(np.float64), "pywavelets")
        assert np.abs(other_hf - hf_ins).max() > 1e-3


def test_official_t2i_gradient_reaches_the_class_half_only_with_flow(pipe):
    """reference_gradient: flow lets the pairwise gradient through the reference (class) half as well: same loss
    value, different gradient; at the loss level the reference gets a gradient only with flow."""
    batch = fixed_batch(pipe)

    def loss_and_grad(gradient):
        unet = perturbed(pipe.unet)
        options = T2IOptions(pairwise_reference="class-half", reference_gradient=gradient, timesteps="shared", prior_weight=0.0)
        loss, terms = DreamBoothDomainStudio(pipe.scheduler, pipe.vae, None, DomainStudioWeights(1.0, 0.0, 0.0), options)(
            unet, batch, torch.Generator().manual_seed(4))
        loss.backward()
        return terms["l_img"], torch.cat([p.grad.flatten() for p in unet.parameters() if p.grad is not None])

    (l_flow, g_flow), (l_detach, g_detach) = loss_and_grad("flow"), loss_and_grad("detach")
    assert l_flow == pytest.approx(l_detach, rel=1e-6) and not torch.allclose(g_flow, g_detach)
    ada, ref = torch.randn(4, 6, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    losses.relative_distance_loss(ada, ref, detach_reference=True).backward()
    assert ref.grad is None and ada.grad.abs().sum() > 0
    losses.relative_distance_loss(ada, ref, detach_reference=False).backward()
    assert ref.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="reference_gradient 'flow' needs pairwise_reference 'class-half'"):
        DreamBoothDomainStudio(pipe.scheduler, pipe.vae, pipe.unet, DomainStudioWeights(1.0, 0, 0), T2IOptions(reference_gradient="flow"))


class Killed(Exception):
    pass


def test_a_killed_t2i_training_resumes_to_the_same_weights(tiny_dir, tmp_path, monkeypatch):
    """The t2i trainer runs on the diffusion family's loop: checkpointed every 2 steps, a run killed at step 4
    resumes from step 2 and ends with the weights of an uninterrupted run (warm-up and EMA on, so their state
    is part of what resumes)."""
    rng = np.random.default_rng(0)
    instance = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    classes = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    cfg = T2ITrainConfig(steps=5, batch_size=3, lr=1e-3, warmup_steps=2, ema_decay=0.9, checkpoint_every=2, seed=0)

    def run(checkpoint):
        unet = train_t2i(load_t2i_pipeline(tiny_dir), instance, classes, "a sks face", "a face", DomainStudioWeights(1.0, 1.0, 0.1),
                         T2IOptions(), cfg, checkpoint=checkpoint, fingerprint="f")
        return torch.cat([p.flatten() for p in unet.parameters()])

    reference = run(tmp_path / "ref.pt")
    calls, original = {"n": 0}, DreamBoothDomainStudio.__call__

    def dies_at_step_4(self, unet, batch, generator):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Killed()
        return original(self, unet, batch, generator)

    ckpt = tmp_path / "run.pt"
    with monkeypatch.context() as m:
        m.setattr(DreamBoothDomainStudio, "__call__", dies_at_step_4)
        with pytest.raises(Killed):
            run(ckpt)
    assert torch.load(ckpt, weights_only=False)["step"] == 2
    assert torch.equal(run(ckpt), reference)
    plain = T2ITrainConfig(steps=5, batch_size=3, lr=1e-3, seed=0)
    unet = train_t2i(load_t2i_pipeline(tiny_dir), instance, classes, "a sks face", "a face", DomainStudioWeights(1.0, 1.0, 0.1),
                     T2IOptions(), plain)
    assert not torch.equal(torch.cat([p.flatten() for p in unet.parameters()]), reference)  # warm-up and EMA change the result
