"""The GAN baselines: networks, each method's extra loss, FreezeD's freezing, determinism and the CLI verbs."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from domainstudio.cli import main
from domainstudio.data.images import save_images
from domainstudio.gan.artifact import build_gan, load_gan, sample_gan
from domainstudio.gan.losses import cross_domain_consistency_loss, ewc_fisher, ewc_penalty
from domainstudio.gan.methods import GAN_METHODS, Adaptation, Cdc, CdcConfig, EwcConfig, FreezeD, FreezeDConfig, GanMethodsConfig, build_adaptation
from domainstudio.gan.networks import GanNetworkConfig, ModulatedConv
from domainstudio.gan.train import GanTrainConfig, train_gan
from domainstudio.params.arguments import gan_rules_active
from domainstudio.params.checks import ConfigError, check_config
from domainstudio.registry import METHOD_FAMILIES

NET = GanNetworkConfig(z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=16, patch_resolution=8)
RES = 16


def tiny_gan(seed=0):
    return build_gan(NET, RES, seed)


def images(n=6, seed=0):
    return (np.random.default_rng(seed).random((n, RES, RES, 3)) * 255).astype(np.uint8)


def perturb(module, scale=0.05, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def test_shapes_and_patch_discriminator():
    G, D = tiny_gan()
    z = torch.randn(4, NET.z_dim)
    x, feats = G(z, return_features=True)
    assert x.shape == (4, 3, RES, RES)
    assert [f.shape[-1] for f in feats] == [4, 8, 16]
    assert D(x).shape == (4,)
    assert D(x, patch=True).shape == (4, 8 * 8)  # one logit per position of the 8x8 feature map
    assert len(D.layers) == 4  # from_rgb, 16->8, 8->4, epilogue


def test_modulated_conv_equals_grouped_weight_form():
    """Modulating activations and scaling outputs equals StyleGAN2's per-sample modulated, demodulated weights."""
    torch.manual_seed(0)
    conv = ModulatedConv(5, 7, 3, w_dim=6)
    x, w = torch.randn(3, 5, 8, 8), torch.randn(3, 6)
    style = conv.affine(w)
    weight = conv.weight[None] * conv.scale * style[:, None, :, None, None]  # B x out x in x k x k
    weight = weight * torch.rsqrt(weight.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
    ref = F.conv2d(x.reshape(1, 15, 8, 8), weight.reshape(21, 5, 3, 3), padding=1, groups=3).reshape(3, 7, 8, 8)
    ref = F.leaky_relu(ref + conv.bias[None, :, None, None], 0.2) * 2 ** 0.5
    torch.testing.assert_close(conv(x, w), ref, atol=1e-5, rtol=1e-5)


def test_cdc_consistency_is_zero_for_the_source_and_positive_after_adaptation():
    G, D = tiny_gan()
    rule = Cdc(G, D, CdcConfig(feature_batch=5), anchors=3, rng=torch.Generator().manual_seed(0))
    loss, terms = rule.generator_regulariser(G, torch.Generator().manual_seed(1))
    assert abs(loss.item()) < 1e-6 and abs(terms["cdc"]) < 1e-6
    perturb(G, 0.3)
    loss, _ = rule.generator_regulariser(G, torch.Generator().manual_seed(1))
    assert loss.item() > 1e-4
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)
    assert G.blocks[0].conv1.weight.grad.abs().sum() > 0  # the gradient reaches the synthesis layers


def test_cdc_loss_needs_matching_layers():
    with pytest.raises(ValueError):
        cross_domain_consistency_loss([torch.randn(3, 4)], [])


def test_cdc_anchor_split():
    G, D = tiny_gan()
    rule = Cdc(G, D, CdcConfig(anchor_every=4, anchor_std=0.0), anchors=3, rng=torch.Generator().manual_seed(0))
    rng = torch.Generator().manual_seed(0)
    z, patch = rule.latents(0, 6, rng)
    assert not patch and all(any(torch.equal(zi, a) for a in rule.anchors) for zi in z)  # image-level D on anchors
    z, patch = rule.latents(1, 6, rng)
    assert patch and not any(torch.equal(zi, a) for zi in z for a in rule.anchors)


def test_ewc_fisher_is_positive_and_penalty_zero_at_the_source():
    G, D = tiny_gan()
    fisher = ewc_fisher(G, D, batches=2, batch_size=4, rng=torch.Generator().manual_seed(0))
    assert set(fisher) == {n for n, _ in G.named_parameters()}
    flat = torch.cat([f.flatten() for f in fisher.values()])
    assert (flat >= 0).all() and flat.sum() > 0 and (flat > 0).float().mean() > 0.9
    rule = build_adaptation("ewc", G, D, GanMethodsConfig(ewc=EwcConfig(fisher_batches=2, fisher_batch_size=4)), 3,
                            torch.Generator().manual_seed(0), seed=0)
    assert all(torch.equal(rule.fisher[n], fisher[n]) for n in fisher)  # source_fisher: ewc_fisher from its own seeded stream
    assert rule.generator_regulariser(G, None)[0].item() == 0.0
    perturb(G)
    assert ewc_penalty(G, rule.source, rule.fisher).item() > 0


def test_freezed_keeps_the_lower_discriminator_layers():
    G, D = tiny_gan()
    rule = FreezeD(G, D, FreezeDConfig(layers=2))
    before = {n: p.detach().clone() for n, p in D.named_parameters()}
    g_before = [p.detach().clone() for p in G.parameters()]
    train_gan(G, D, images(), GanTrainConfig(steps=1, batch_size=4), rule, torch.Generator().manual_seed(0))
    frozen = {n for n, _ in D.named_parameters() if n.startswith(("from_rgb.", "blocks.0."))}
    assert frozen
    for n, p in D.named_parameters():
        if n in frozen:
            assert torch.equal(p, before[n]), n
        elif not n.startswith("patch_head."):  # the patch head serves CDC only
            assert not torch.equal(p, before[n]), n
    assert any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    with pytest.raises(ValueError, match="freezed.layers"):
        FreezeD(*tiny_gan(), FreezeDConfig(layers=4))


@pytest.mark.parametrize("method", GAN_METHODS)
def test_adaptation_is_deterministic_by_seed(method):
    cfg = GanMethodsConfig(ewc=EwcConfig(fisher_batches=1, fisher_batch_size=4), cdc=CdcConfig(feature_batch=3, anchor_every=2))

    def adapt(seed):
        G, D = tiny_gan()
        rng = torch.Generator().manual_seed(seed)
        rule = build_adaptation(method, G, D, cfg, 3, rng)
        final, rows = train_gan(G, D, images(), GanTrainConfig(steps=3, batch_size=4, r1_every=2, seed=seed, log_every=1), rule, rng)
        assert len(rows) == 3
        return torch.cat([p.flatten() for p in final.parameters()])

    a, b, c = adapt(0), adapt(0), adapt(1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sampling_is_seeded_and_independent_of_the_batch_size():
    G, _ = tiny_gan()
    a, b = sample_gan(G, 10, seed=3, batch_size=4), sample_gan(G, 10, seed=3, batch_size=10)
    assert a.shape == (10, RES, RES, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, sample_gan(G, 10, seed=4))


def test_unknown_method_and_bad_settings_are_refused():
    G, D = tiny_gan()
    with pytest.raises(ValueError, match="unknown GAN method"):
        build_adaptation("stylegan-nada", G, D, GanMethodsConfig(), 3, torch.Generator())
    with pytest.raises(ValueError, match="gan.methods.cdc"):
        GanMethodsConfig.from_dict({"cdc": {"lambda": 1}})
    with pytest.raises(ValueError, match="power of two"):
        build_gan(NET, 24, 0)


def test_methods_are_in_the_gan_family_and_config_is_checked():
    assert all(METHOD_FAMILIES[m] == "gan" for m in GAN_METHODS)
    import yaml

    from tests.conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text()) | yaml.safe_load((ROOT / "config/baselines.yaml").read_text())
    check_config(params, ROOT)
    with pytest.raises(ConfigError, match="resolution"):
        check_config({**params, "resolution": 48}, ROOT)
    with pytest.raises(ConfigError, match="gan"):
        check_config({k: v for k, v in params.items() if k != "gan"}, ROOT)
    # the GAN rules: for a GAN row, or to train the source GAN (config/release.yaml); a config without gan: has none
    main_job = yaml.safe_load((ROOT / "params.yaml").read_text())
    release = {**main_job, "gan": {**main_job["gan"], "pretrained": None}}
    without_gan = {k: v for k, v in main_job.items() if k != "gan"}
    assert gan_rules_active(params) and gan_rules_active(release)
    assert not gan_rules_active(main_job) and not gan_rules_active(without_gan)
    check_config(without_gan, ROOT)
    with pytest.raises(ConfigError, match="resolution: the GAN baselines .*source GAN trained here"):
        check_config({**release, "resolution": 48}, ROOT)


def test_cli_pretrain_adapt_sample(tmp_path):
    save_images(images(12), tmp_path / "source")
    save_images(images(5, seed=1), tmp_path / "target")
    net = {k: getattr(NET, k) for k in ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max", "patch_resolution")}
    cfg = {"network": net, "pretrain": {"steps": 3, "batch_size": 4, "log_every": 1}}
    assert main(["pretrain-gan", "--images", str(tmp_path / "source"), "--out", str(tmp_path / "src"), "--resolution", str(RES),
                 "--config-json", json.dumps(cfg), "--threads", "1", "--checkpoint", str(tmp_path / "g.pt")]) == 0
    assert (tmp_path / "src" / "preview.png").exists() and (tmp_path / "src" / "train_log.csv").exists()
    assert torch.load(tmp_path / "g.pt", weights_only=False)["step"] == 3  # the final state stays: raising steps continues it
    longer = {**cfg, "pretrain": {**cfg["pretrain"], "steps": 4}}
    assert main(["pretrain-gan", "--images", str(tmp_path / "source"), "--out", str(tmp_path / "src4"), "--resolution", str(RES),
                 "--config-json", json.dumps(longer), "--checkpoint", str(tmp_path / "g.pt")]) == 0
    assert (tmp_path / "src4" / "train_log.csv").read_text().splitlines()[1:] == \
        (tmp_path / "src" / "train_log.csv").read_text().splitlines()[1:] + (tmp_path / "src4" / "train_log.csv").read_text().splitlines()[-1:]
    adapt_cfg = {"adapt": {"steps": 2, "batch_size": 4, "seed": 0}, "methods": {"cdc": {"feature_batch": 3}}}
    assert main(["adapt-gan", "--source", str(tmp_path / "src"), "--images", str(tmp_path / "target"), "--shots", "5",
                 "--method", "cdc", "--config-json", json.dumps(adapt_cfg), "--out", str(tmp_path / "cdc")]) == 0
    assert json.loads((tmp_path / "cdc" / "adaptation.json").read_text())["method"] == "cdc"
    assert main(["sample-gan", "--model", str(tmp_path / "cdc"), "--out", str(tmp_path / "samples"), "--n-samples", "70"]) == 0
    assert len(list((tmp_path / "samples" / "images").glob("*.png"))) == 70
    assert (tmp_path / "samples" / "grid.png").exists()
    assert json.loads((tmp_path / "samples" / "sampling.json").read_text())["n_samples"] == 70
    G, _ = load_gan(tmp_path / "cdc")
    assert G.resolution == RES
    with pytest.raises(SystemExit, match="shots|images"):
        main(["adapt-gan", "--source", str(tmp_path / "src"), "--images", str(tmp_path / "target"), "--shots", "9",
              "--method", "tgan", "--config-json", json.dumps(adapt_cfg), "--out", str(tmp_path / "x")])

    # EWC's Fisher computed once per seed (rule ewc_fisher) gives the same adaptation as computing it in the job
    ewc_cfg = {"adapt": {"steps": 2, "batch_size": 4, "seed": 3}, "methods": {"ewc": {"fisher_batches": 2, "fisher_batch_size": 4}}}
    assert main(["ewc-fisher", "--source", str(tmp_path / "src"), "--seed", "3", "--config-json", json.dumps(ewc_cfg["methods"]),
                 "--out", str(tmp_path / "fisher.pt")]) == 0
    for name, extra in (("inline", []), ("cached", ["--fisher", str(tmp_path / "fisher.pt")])):
        assert main(["adapt-gan", "--source", str(tmp_path / "src"), "--images", str(tmp_path / "target"), "--shots", "5",
                     "--method", "ewc", "--config-json", json.dumps(ewc_cfg), "--out", str(tmp_path / name), *extra]) == 0
    inline, cached = (torch.load(tmp_path / n / "gan.pt", weights_only=False)["generator"] for n in ("inline", "cached"))
    assert all(torch.equal(inline[k], cached[k]) for k in inline)
    other_seed = {**ewc_cfg, "adapt": {**ewc_cfg["adapt"], "seed": 4}}
    with pytest.raises(SystemExit, match="fisher.pt.*rerun ewc-fisher"):
        main(["adapt-gan", "--source", str(tmp_path / "src"), "--images", str(tmp_path / "target"), "--shots", "5", "--method", "ewc",
              "--config-json", json.dumps(other_seed), "--out", str(tmp_path / "y"), "--fisher", str(tmp_path / "fisher.pt")])


def test_workflow_routes_each_family_to_its_own_rules():
    """The diffusion and GAN rules share output patterns; the method wildcard constraint picks the rule."""
    from tests.conftest import ROOT, run

    def jobs(target):
        out = run(["snakemake", "-n", "-F", target, "--quiet", "rules", "--configfile", "config/baselines.yaml"], cwd=ROOT).stdout
        return {line.split()[0] for line in out.splitlines() if line.strip() and line.split()[-1].isdigit()}

    gan_rules, ddpm_rules = {"import_source_gan", "adapt_gan", "sample_gan"}, {"import_source", "adapt", "sample"}
    gan, ddpm = jobs("samples/faces/babies/10shot/cdc/seed0"), jobs("samples/faces/babies/10shot/ddpm-ft/seed0")
    assert gan_rules <= gan and not ddpm_rules & gan
    assert ddpm_rules <= ddpm and not gan_rules & ddpm


def _pretrain(steps, checkpoint=None, snapshots=None, fingerprint="a", keep=False):
    G, D = tiny_gan()
    cfg = GanTrainConfig(steps=steps, batch_size=4, r1_every=2, ema_decay=0.9, checkpoint_every=2, log_every=1)
    return train_gan(G, D, images(), cfg, Adaptation(G, D), torch.Generator().manual_seed(0), checkpoint=checkpoint,
                     fingerprint=fingerprint, snapshot_dir=snapshots, snapshot_every=2, keep_final_checkpoint=keep)


def test_pretraining_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    """A run stopped after step 2's checkpoint and continued to 5 steps equals one 5-step run, bit for bit; a
    checkpoint of another configuration is ignored."""
    full, full_rows = _pretrain(5)
    checkpoint = tmp_path / "gan.pt"
    _pretrain(3, checkpoint)  # a shorter run: its last checkpoint is at step 2
    assert torch.load(checkpoint, weights_only=False)["step"] == 2
    resumed, rows = _pretrain(5, checkpoint, tmp_path / "snapshots")
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and [r["g_loss"] for r in rows] == [r["g_loss"] for r in full_rows]
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["step4"]  # steps 3-5 ran here
    G4, _ = load_gan(tmp_path / "snapshots" / "step4")
    assert not all(torch.equal(a, b) for a, b in zip(G4.state_dict().values(), resumed.state_dict().values()))
    other, _ = _pretrain(5, checkpoint, fingerprint="b")  # ignored: same as a fresh run
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), other.state_dict().values()))
    finished = tmp_path / "finished.pt"  # a finished 3-step run that keeps its final state continues to 5 steps
    _pretrain(3, finished, keep=True)
    assert torch.load(finished, weights_only=False)["step"] == 3
    continued, _ = _pretrain(5, finished)
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), continued.state_dict().values()))


def test_gan_training_and_sampling_resolve_their_device_like_the_diffusion_code(monkeypatch):
    import domainstudio.devices as devices
    import domainstudio.gan.train as gan_train
    from domainstudio.devices import DeviceError

    asked = []
    monkeypatch.setattr(gan_train, "resolve_device", lambda name: asked.append(name) or torch.device("cpu"))
    G, D = tiny_gan()
    train_gan(G, D, images(), GanTrainConfig(steps=1, batch_size=4), Adaptation(G, D), torch.Generator().manual_seed(0))
    assert asked == ["auto"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="device: 'cuda' asked for"):
        sample_gan(G, 2, seed=0, device="cuda")
    monkeypatch.setattr(gan_train, "resolve_device", devices.resolve_device)
    with pytest.raises(DeviceError, match="device: 'cuda' asked for"):
        train_gan(G, D, images(), GanTrainConfig(steps=1, batch_size=4, device="cuda"), Adaptation(G, D), torch.Generator())


def test_the_official_cdc_and_ewc_choices_are_reachable_by_configuration():
    official = {"kl_direction": "official", "reduction": "mean", "layers": "random", "r1_head": "step", "weight": 1000.0}
    cfg = GanMethodsConfig.from_dict({"cdc": official, "ewc": {"fisher": "batch_mean", "fisher_batches": 1, "fisher_batch_size": 4}})
    for method in ("cdc", "ewc"):
        G, D = tiny_gan()
        rule = build_adaptation(method, G, D, cfg, 3, torch.Generator().manual_seed(0))
        _, rows = train_gan(G, D, images(), GanTrainConfig(steps=2, batch_size=4, r1_every=1, log_every=1), rule, torch.Generator())
        assert all(np.isfinite(r[method]) for r in rows)
    assert cfg.cdc.r1_head == "step" and Cdc.r1_on_patches(rule_cdc := build_adaptation("cdc", *tiny_gan(), cfg, 3, torch.Generator()), True)
    assert not rule_cdc.r1_on_patches(False)
    with pytest.raises(ValueError, match=r"gan.methods.cdc.layers: one of \['all', 'random'\], not 'every'"):
        GanMethodsConfig.from_dict({"cdc": {"layers": "every"}})
    with pytest.raises(ValueError, match="gan.methods.ewc.fisher"):
        build_adaptation("ewc", *tiny_gan(), GanMethodsConfig.from_dict({"ewc": {"fisher": "diag"}}), 3, torch.Generator())
