"""DPMs-ANT's adaptors (Wang et al., ICML 2024, "Bridging Data Gaps in Diffusion Models with Adversarial Noise-Based
Transfer Learning", Sec. "adaptor"): small trainable modules beside the blocks of a frozen source UNet.

Each adaptor reads a block's input x (B x C x H x W) and its output is added to the block's output:

    a(x) = conv_up(GN(upsample(ViT(conv_down(GN(avgpool_p(x))) + W_t SiLU(temb)))))

avgpool_p pools p x p patches into tokens, one ViT block (LayerNorm, multi-head self-attention, MLP) mixes them at
width ``dim``, and nearest upsampling returns to H x W. Every convolution and linear layer starts at N(0, init_std),
so the adapted model starts close to the source model (its noise prediction moves by about 1e-2 at most on the
released 32 px UNet). Adaptors sit beside every ResnetBlock2D (with
the time embedding), every attention layer, and the output head (from the input of ``conv_norm_out`` to the output
of ``conv_out``), as in the authors' code (ChhaviPan23/DPMs-ANT, model/adapter_utils).

On a diffusers ``UNet2DModel`` the adaptors are attached with forward hooks (:func:`attach_adaptors`), so the
UNet keeps its class and every sampler and trainer uses it unchanged. They live in one submodule,
``unet.ant_adaptors``; an adapted model is saved as the plain source UNet plus an ``ant_adaptor/`` folder
(:func:`save_adaptors`), which :func:`domainstudio.models.source.load_source` attaches again.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ADAPTOR_FOLDER = "ant_adaptor"
ADAPTOR_WEIGHTS = "adaptor.safetensors"
ATTRIBUTE = "ant_adaptors"


@dataclass(frozen=True)
class AdaptorConfig:
    """The authors' settings (configs/DDPM/base.yaml: dim 16, 2 heads, patch 4, dropout 0.1; init N(0, 2e-4))."""
    dim: int = 16
    heads: int = 2
    patch_size: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    init_std: float = 2e-4

    def __post_init__(self):
        if self.dim % self.heads or self.dim % 4:
            raise ValueError(f"adapt.ant.adaptor.dim: a multiple of 4 and of heads ({self.heads}), not {self.dim}")
        if self.patch_size < 1:
            raise ValueError(f"adapt.ant.adaptor.patch_size: at least 1, not {self.patch_size}")


class _ViTBlock(nn.Module):
    """x + MSA(LN(x)), then + MLP(LN(x)) (pre-norm transformer block)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + F.dropout(self.proj(att.transpose(1, 2).reshape(b, n, d)), self.dropout, self.training)
        return x + self.mlp(self.norm2(x))


class Adaptor(nn.Module):
    """One adaptor: in_channels -> out_channels at the input's resolution (module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, cfg: AdaptorConfig, temb_channels: int | None = None):
        super().__init__()
        self.patch_size = cfg.patch_size
        self.norm_in = nn.GroupNorm(in_channels // 2 if in_channels % 2 == 0 else 1, in_channels, eps=1e-6)
        self.conv_down = nn.Conv2d(in_channels, cfg.dim, 3, padding=1)
        self.time_proj = nn.Linear(temb_channels, cfg.dim) if temb_channels else None
        self.block = _ViTBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout)
        self.norm_out = nn.GroupNorm(cfg.dim // 4, cfg.dim, eps=1e-6)
        self.conv_up = nn.Conv2d(cfg.dim, out_channels, 3, padding=1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, cfg.init_std)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        p = min(self.patch_size, h, w)
        tokens = self.conv_down(self.norm_in(F.avg_pool2d(x, p)))  # B x dim x h/p x w/p
        grid = tokens.shape[-2:]
        tokens = tokens.flatten(2).transpose(1, 2)
        if self.time_proj is not None and temb is not None:
            tokens = tokens + self.time_proj(F.silu(temb))[:, None]
        tokens = self.block(tokens).transpose(1, 2).reshape(b, -1, *grid)
        return self.conv_up(self.norm_out(F.interpolate(tokens, size=(h, w), mode="nearest")))


class AdaptorSet(nn.Module):
    """Every adaptor of one UNet: ``blocks`` keyed by the hooked module's path, and ``end`` for the output head."""

    def __init__(self, blocks: dict[str, Adaptor], end: Adaptor, cfg: AdaptorConfig):
        super().__init__()
        self.blocks = nn.ModuleDict(blocks)
        self.end = end
        self.config = cfg
        self.pending = None  # the end adaptor's output between conv_norm_out's input and conv_out's output


def _key(path: str) -> str:
    return path.replace(".", "__")


def _block_hook(adaptors: AdaptorSet, key: str, module, args, kwargs, output):
    """output + a(x): a ResnetBlock2D (x, temb) or an attention layer (x); a resampling resnet's x is resampled first."""
    x = args[0] if args else kwargs.get("input_tensor", kwargs.get("hidden_states"))
    temb = args[1] if len(args) > 1 else kwargs.get("temb")
    if getattr(module, "up", False):
        x = module.upsample(x)
    elif getattr(module, "down", False):
        x = module.downsample(x)
    return output + adaptors.blocks[key](x, temb).to(output.dtype)


def _end_input_hook(adaptors: AdaptorSet, module, args):
    adaptors.pending = adaptors.end(args[0])


def _end_output_hook(adaptors: AdaptorSet, module, args, output):
    out, adaptors.pending = output + adaptors.pending.to(output.dtype), None
    return out


def attach_adaptors(unet, cfg: AdaptorConfig = AdaptorConfig()) -> AdaptorSet:
    """Freeze ``unet`` and attach a fresh adaptor beside each of its resnet and attention blocks and its output head
    (module docstring). Returns the adaptors (also ``unet.ant_adaptors``), the only trainable parameters."""
    from diffusers.models.attention_processor import Attention
    from diffusers.models.resnet import ResnetBlock2D

    if hasattr(unet, ATTRIBUTE):
        raise ValueError("the UNet already has DPMs-ANT adaptors")
    unet.requires_grad_(False)
    temb = unet.time_embedding.linear_2.out_features
    targets = {}
    for path, module in unet.named_modules():
        if isinstance(module, ResnetBlock2D):
            t_ch = temb if module.time_emb_proj is not None else None
            targets[path] = (module, Adaptor(module.in_channels, module.out_channels, cfg, t_ch))
        elif isinstance(module, Attention):
            channels = module.to_out[0].out_features
            targets[path] = (module, Adaptor(channels, channels, cfg))
    end = Adaptor(unet.conv_norm_out.num_channels, unet.conv_out.out_channels, cfg)
    adaptors = AdaptorSet({_key(p): a for p, (_, a) in targets.items()}, end, cfg).to(unet.device, unet.dtype)
    unet.add_module(ATTRIBUTE, adaptors)
    for path, (module, _) in targets.items():
        module.register_forward_hook(functools.partial(_block_hook, adaptors, _key(path)), with_kwargs=True)
    unet.conv_norm_out.register_forward_pre_hook(functools.partial(_end_input_hook, adaptors))
    unet.conv_out.register_forward_hook(functools.partial(_end_output_hook, adaptors))
    return adaptors


def has_adaptors(unet) -> bool:
    return hasattr(unet, ATTRIBUTE)


def base_state_dict(unet) -> dict[str, torch.Tensor]:
    """The source UNet's own weights, without the adaptors."""
    return {k: v for k, v in unet.state_dict().items() if not k.startswith(ATTRIBUTE + ".")}


def save_adaptors(unet, folder: str | Path) -> None:
    """``folder/ant_adaptor/``: the adaptor config and weights (safetensors)."""
    from safetensors.torch import save_file

    out = Path(folder) / ADAPTOR_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    adaptors = getattr(unet, ATTRIBUTE)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(adaptors.config), indent=2))
    save_file({k: v.contiguous() for k, v in adaptors.state_dict().items()}, out / ADAPTOR_WEIGHTS)


def load_adaptors(unet, folder: str | Path) -> None:
    """Attach the adaptors saved in ``folder/ant_adaptor/`` to ``unet`` (strict: every weight must match)."""
    from safetensors.torch import load_file

    src = Path(folder) / ADAPTOR_FOLDER
    cfg = AdaptorConfig(**json.loads((src / "config.json").read_text()))
    adaptors = attach_adaptors(unet, cfg)
    adaptors.load_state_dict(load_file(src / ADAPTOR_WEIGHTS))
    adaptors.eval()


def saved_adaptors(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTOR_FOLDER / "config.json").exists()
