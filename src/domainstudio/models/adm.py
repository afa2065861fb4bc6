"""guided-diffusion (ADM) checkpoints as diffusers source models: the state dict of OpenAI's ``UNetModel`` and its
model flags become a ``UNet2DModel`` and a ``DDPMScheduler``, once, so that everything downstream loads the usual
source folder. DomainStudio, DDPM-PA and the later methods adapt such checkpoints (e.g. the FFHQ-256 ``ffhq.pt`` of
yandex-research/ddpm-segmentation); no guided-diffusion code runs here, and tests/test_adm.py checks the converted
model's outputs against guided-diffusion's own ``create_model_and_diffusion``.

The two architectures are the same network under other names: ADM's input blocks are diffusers' down blocks
(``num_res_blocks`` residual blocks, with attention where ``image_size // res`` is in ``attention_resolutions``,
then a downsampling block), its output blocks the up blocks (one residual block more per level, over the skip
connections), its ResBlock a ``ResnetBlock2D`` (``use_scale_shift_norm``: ``resnet_time_scale_shift="scale_shift"``;
``resblock_updown``: down/up-sampling residual blocks), its attention an ``Attention`` whose fused ``qkv``
projection is split per head, and its sinusoidal time embedding diffusers' with cos first and no frequency shift.
With ``learn_sigma`` the UNet has 6 output channels, eps and the variance interpolation v of Improved DDPM
(Nichol & Dhariwal 2021, eq. 15), and the scheduler's ``variance_type`` is ``learned_range``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from domainstudio.models import SourceModelError


@dataclass
class AdmFlags:
    """guided-diffusion's model and diffusion flags; defaults: DomainStudio's FFHQ-256 source (its
    ``Unconditional/README.md``: the flags of yandex-research/ddpm-segmentation's ``ffhq.pt``)."""
    image_size: int = 256
    num_channels: int = 256
    num_res_blocks: int = 2
    channel_mult: str = ""                  # "": guided-diffusion's default for image_size, e.g. 1,1,2,2,4,4 at 256
    attention_resolutions: str = "32,16,8"
    num_head_channels: int = 64
    resblock_updown: bool = True
    use_scale_shift_norm: bool = True
    use_new_attention_order: bool = False
    learn_sigma: bool = True
    diffusion_steps: int = 1000
    noise_schedule: str = "linear"          # linear | cosine

    def multipliers(self) -> tuple[int, ...]:
        if self.channel_mult:
            return tuple(int(m) for m in self.channel_mult.split(","))
        defaults = {256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}
        if self.image_size not in defaults:
            raise SourceModelError(f"source.adm.channel_mult: guided-diffusion has no default for image_size {self.image_size}; "
                                   f"give the checkpoint's channel_mult (e.g. 1,2,2)")
        return defaults[self.image_size]

    def attention_levels(self) -> set[int]:
        """Levels (0: full resolution) whose blocks have self-attention."""
        ds = {self.image_size // int(r) for r in self.attention_resolutions.split(",") if r}
        return {level for level in range(len(self.multipliers())) if 2 ** level in ds}


def build_adm_unet(flags: AdmFlags):
    """The diffusers UNet2DModel with an ADM's architecture (random weights)."""
    from diffusers import UNet2DModel

    if flags.num_head_channels <= 0:
        raise SourceModelError("source.adm.num_head_channels: the conversion needs a fixed number of channels per attention "
                               "head (diffusers' attention_head_dim); checkpoints with num_head_channels -1 are not supported")
    mult, attn = flags.multipliers(), flags.attention_levels()
    resnet_sampling = flags.resblock_updown
    down = [("AttnDownBlock2D" if level in attn else "ResnetDownsampleBlock2D" if resnet_sampling else "DownBlock2D")
            for level in range(len(mult))]
    up = [("AttnUpBlock2D" if level in attn else "ResnetUpsampleBlock2D" if resnet_sampling else "UpBlock2D")
          for level in reversed(range(len(mult)))]
    return UNet2DModel(
        sample_size=flags.image_size, in_channels=3, out_channels=6 if flags.learn_sigma else 3,
        block_out_channels=tuple(flags.num_channels * m for m in mult), layers_per_block=flags.num_res_blocks,
        down_block_types=tuple(down), up_block_types=tuple(up), attention_head_dim=flags.num_head_channels,
        norm_num_groups=32, attn_norm_num_groups=32, norm_eps=1e-5, flip_sin_to_cos=True, freq_shift=0,
        resnet_time_scale_shift="scale_shift" if flags.use_scale_shift_norm else "default",
        downsample_type="resnet" if resnet_sampling else "conv", upsample_type="resnet" if resnet_sampling else "conv",
        downsample_padding=1,
    )


def build_adm_scheduler(flags: AdmFlags):
    """guided-diffusion's noise schedule (linear: betas from 1e-4 to 0.02 scaled by 1000 / T; cosine: Improved DDPM's)."""
    from diffusers import DDPMScheduler

    if flags.noise_schedule not in ("linear", "cosine"):
        raise SourceModelError(f"source.adm.noise_schedule: linear or cosine, not {flags.noise_schedule!r}")
    scale = 1000 / flags.diffusion_steps
    schedule = {"linear": dict(beta_schedule="linear", beta_start=scale * 1e-4, beta_end=scale * 0.02),
                "cosine": dict(beta_schedule="squaredcos_cap_v2")}[flags.noise_schedule]
    return DDPMScheduler(num_train_timesteps=flags.diffusion_steps, variance_type="learned_range" if flags.learn_sigma else "fixed_small",
                         clip_sample=False, prediction_type="epsilon", **schedule)


def _resnet(prefix: str) -> dict[str, str]:
    return {"norm1": f"{prefix}.in_layers.0", "conv1": f"{prefix}.in_layers.2", "time_emb_proj": f"{prefix}.emb_layers.1",
            "norm2": f"{prefix}.out_layers.0", "conv2": f"{prefix}.out_layers.3", "conv_shortcut": f"{prefix}.skip_connection"}


def _sampler(prefix: str, resnet: bool) -> dict[str, str]:
    """A down- or up-sampling block: a residual block (resblock_updown) or ADM's strided / nearest-then-conv op."""
    return _resnet(prefix) if resnet else {"conv": f"{prefix}.op" if prefix.startswith("input") else f"{prefix}.conv"}


def adm_key_map(flags: AdmFlags) -> tuple[dict[str, str], dict[str, str]]:
    """(diffusers module prefix -> ADM module prefix) for the plain modules, and the same for attention blocks."""
    mult, attn, n = flags.multipliers(), flags.attention_levels(), flags.num_res_blocks
    plain = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2", "conv_in": "input_blocks.0.0",
             "conv_norm_out": "out.0", "conv_out": "out.2"}
    attention = {}

    def add_resnet(ours: str, theirs: str):
        plain.update({f"{ours}.{k}": v for k, v in _resnet(theirs).items()})

    block = 1
    for level in range(len(mult)):
        for j in range(n):
            add_resnet(f"down_blocks.{level}.resnets.{j}", f"input_blocks.{block}.0")
            if level in attn:
                attention[f"down_blocks.{level}.attentions.{j}"] = f"input_blocks.{block}.1"
            block += 1
        if level != len(mult) - 1:
            plain.update({f"down_blocks.{level}.downsamplers.0.{k}": v for k, v in _sampler(f"input_blocks.{block}.0", flags.resblock_updown).items()})
            block += 1
    add_resnet("mid_block.resnets.0", "middle_block.0")
    attention["mid_block.attentions.0"] = "middle_block.1"
    add_resnet("mid_block.resnets.1", "middle_block.2")
    block = 0
    for i, level in enumerate(reversed(range(len(mult)))):
        for j in range(n + 1):
            add_resnet(f"up_blocks.{i}.resnets.{j}", f"output_blocks.{block}.0")
            if level in attn:
                attention[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{block}.1"
            if level > 0 and j == n:
                index = 2 if level in attn else 1
                plain.update({f"up_blocks.{i}.upsamplers.0.{k}": v for k, v in _sampler(f"output_blocks.{block}.{index}", flags.resblock_updown).items()})
            block += 1
    return plain, attention


def _split_qkv(weight: torch.Tensor, heads: int, new_order: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ADM's fused qkv projection (3 * heads * c rows) as separate q, k, v (heads * c rows each, head-major).
    Legacy order (QKVAttentionLegacy): per head [q, k, v]; new order (QKVAttention): [q of all heads, k ..., v ...]."""
    rows = weight.shape[0] // 3
    if new_order:
        return tuple(weight.reshape(3, rows, *weight.shape[1:]).unbind(0))
    per_head = weight.reshape(heads, 3, rows // heads, *weight.shape[1:])
    return tuple(per_head[:, i].reshape(rows, *weight.shape[1:]) for i in range(3))


def convert_adm_state_dict(state: dict[str, torch.Tensor], flags: AdmFlags):
    """The diffusers UNet2DModel holding an ADM state dict's weights; every weight of both sides is used exactly
    once, or SourceModelError names the flags to check."""
    unet = build_adm_unet(flags)
    target = unet.state_dict()
    converted, used = {}, set()
    plain, attention = adm_key_map(flags)
    for ours, theirs in plain.items():
        for suffix in ("weight", "bias"):
            if f"{ours}.{suffix}" in target:
                converted[f"{ours}.{suffix}"] = state.get(f"{theirs}.{suffix}")
                used.add(f"{theirs}.{suffix}")
    for ours, theirs in attention.items():
        channels = target[f"{ours}.to_q.weight"].shape[0]
        heads = channels // flags.num_head_channels
        converted[f"{ours}.group_norm.weight"], converted[f"{ours}.group_norm.bias"] = state.get(f"{theirs}.norm.weight"), state.get(f"{theirs}.norm.bias")
        qkv_w, qkv_b = state.get(f"{theirs}.qkv.weight"), state.get(f"{theirs}.qkv.bias")
        if qkv_w is not None and qkv_b is not None:
            for name, w, b in zip(("to_q", "to_k", "to_v"), _split_qkv(qkv_w[..., 0], heads, flags.use_new_attention_order),
                                  _split_qkv(qkv_b, heads, flags.use_new_attention_order)):
                converted[f"{ours}.{name}.weight"], converted[f"{ours}.{name}.bias"] = w, b
        proj = state.get(f"{theirs}.proj_out.weight")
        converted[f"{ours}.to_out.0.weight"] = proj[..., 0] if proj is not None else None
        converted[f"{ours}.to_out.0.bias"] = state.get(f"{theirs}.proj_out.bias")
        used |= {f"{theirs}.{k}" for k in ("norm.weight", "norm.bias", "qkv.weight", "qkv.bias", "proj_out.weight", "proj_out.bias")}
    missing = sorted(k for k, v in converted.items() if v is None) + sorted(set(target) - set(converted))
    unused = sorted(set(state) - used)
    wrong = sorted(k for k, v in converted.items() if v is not None and v.shape != target[k].shape)
    if missing or unused or wrong:
        raise SourceModelError(
            "the guided-diffusion checkpoint does not match source.adm's flags (image_size, num_channels, channel_mult, "
            f"num_res_blocks, attention_resolutions, num_head_channels, resblock_updown, learn_sigma): missing {missing[:5]}, "
            f"unused {unused[:5]}, wrong shape {wrong[:5]}")
    unet.load_state_dict(converted)
    return unet


def load_adm_checkpoint(path, flags: AdmFlags):
    """(UNet2DModel, DDPMScheduler) from a guided-diffusion ``.pt`` state dict and its flags."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise SourceModelError(f"source.pretrained: no guided-diffusion checkpoint at {path}; put the .pt file there "
                               f"(e.g. ffhq.pt of yandex-research/ddpm-segmentation, docs/paper_scale.md)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt or foreign file: torch raises many kinds
        raise SourceModelError(f"{path}: cannot read it as a PyTorch state dict ({type(err).__name__}: {err})") from err
    return convert_adm_state_dict(state, flags), build_adm_scheduler(flags)
