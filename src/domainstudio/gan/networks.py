"""A small StyleGAN2-style generator and residual discriminator for the GAN baselines.

Why this architecture: the few-shot GAN adaptation papers we compare against all build on StyleGAN
(FreezeD and EWC on StyleGAN, CDC on StyleGAN2), and CDC's consistency loss reads the activations of the
generator's synthesis layers. So the generator keeps the parts those methods touch: a mapping network
z -> w, a learned 4x4 constant, modulated + demodulated 3x3 convolutions at every resolution with skip
to-RGB outputs (Karras et al. 2020, "Analyzing and improving...", §2.2), equalised learning rates, and a
residual discriminator with a minibatch-stddev layer. Left out, to keep a CPU budget of seconds: per-pixel
noise inputs, style mixing, blurred up/down-sampling (bilinear / average pooling instead) and path-length
regularisation. The discriminator also carries CDC's patch-level head (a 1x1 convolution on an intermediate
feature map, Ojha et al. 2021 §3.2); only CDC trains or uses it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

_GAIN = math.sqrt(2.0)  # keeps the variance of leaky-ReLU activations (StyleGAN's act gain)


@dataclass
class GanNetworkConfig:
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2
    channel_base: int = 1024   # channels at resolution r: min(channel_max, channel_base // r)
    channel_max: int = 128
    mbstd_group: int = 4       # minibatch-stddev group size of the discriminator
    patch_resolution: int = 8  # resolution of the feature map under CDC's patch-level head

    def channels(self, res: int) -> int:
        return max(1, min(self.channel_max, self.channel_base // res))


def resolutions(resolution: int) -> list[int]:
    """4, 8, ..., resolution; the resolution must be a power of two >= 8."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution: the GAN needs a power of two of at least 8, not {resolution}")
    return [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]


class EqualLinear(nn.Module):
    """Linear layer with an equalised learning rate: weights ~ N(0, 1) scaled by lr_mul / sqrt(fan_in) at run time."""

    def __init__(self, in_features, out_features, bias_init=0.0, lr_mul=1.0, activate=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(in_features), lr_mul, activate

    def forward(self, x):
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * _GAIN if self.activate else out


class EqualConv(nn.Module):
    """Convolution with an equalised learning rate (discriminator)."""

    def __init__(self, in_channels, out_channels, kernel, activate=True, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale, self.padding, self.activate = 1 / math.sqrt(in_channels * kernel * kernel), kernel // 2, activate

    def forward(self, x):
        out = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)
        return F.leaky_relu(out, 0.2) * _GAIN if self.activate else out


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution: scale the input channels by a style s = A(w), convolve, and (if
    ``demodulate``) divide each output channel by the norm of its modulated weights (StyleGAN2 eq. 1-3),
    computed as modulate-activations / shared conv / scale-outputs, which equals the grouped form."""

    def __init__(self, in_channels, out_channels, kernel, w_dim, demodulate=True, upsample=False, activate=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channels * kernel * kernel)
        self.demodulate, self.upsample, self.activate, self.padding = demodulate, upsample, activate, kernel // 2

    def forward(self, x, w):
        style = self.affine(w)  # B x in
        weight = self.weight * self.scale
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            demod = torch.rsqrt((weight[None] ** 2 * style[:, None, :, None, None] ** 2).sum((2, 3, 4)) + 1e-8)
            out = out * demod[:, :, None, None]
        out = out + self.bias[None, :, None, None]
        return F.leaky_relu(out, 0.2) * _GAIN if self.activate else out


class MappingNetwork(nn.Module):
    """z -> w: pixel-normalised z through ``layers`` fully connected layers (lr multiplier 0.01, as StyleGAN)."""

    def __init__(self, z_dim, w_dim, layers):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=0.01, activate=True) for a, b in zip(dims[:-1], dims[1:])])

    def forward(self, z):
        z = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
        return self.net(z)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, first):
        super().__init__()
        self.conv0 = None if first else ModulatedConv(in_channels, out_channels, 3, w_dim, upsample=True)
        self.conv1 = ModulatedConv(out_channels, out_channels, 3, w_dim)
        self.to_rgb = ModulatedConv(out_channels, 3, 1, w_dim, demodulate=False, activate=False)

    def forward(self, x, w):
        if self.conv0 is not None:
            x = self.conv0(x, w)
        return self.conv1(x, w)


class Generator(nn.Module):
    """G(z) = synthesis(mapping(z)); images in [-1, 1] (not clamped while training)."""

    def __init__(self, cfg: GanNetworkConfig, resolution: int):
        super().__init__()
        self.cfg, self.resolution = cfg, resolution
        res = resolutions(resolution)
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers)
        self.const = nn.Parameter(torch.randn(1, cfg.channels(4), 4, 4))
        self.blocks = nn.ModuleList(
            SynthesisBlock(cfg.channels(r // 2) if r > 4 else cfg.channels(4), cfg.channels(r), cfg.w_dim, first=r == 4) for r in res)

    def forward(self, z, return_features: bool = False):
        """Images for latents ``z`` (B x z_dim); with ``return_features`` also the output of every synthesis block
        (4x4 up to full resolution), the layers CDC's consistency loss compares."""
        w = self.mapping(z)
        x = self.const.expand(z.shape[0], -1, -1, -1)
        rgb, features = None, []
        for block in self.blocks:
            x = block(x, w)
            features.append(x)
            y = block.to_rgb(x, w)
            rgb = y if rgb is None else F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + y
        return (rgb, features) if return_features else rgb


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions and a 2x average-pool, with a 1x1 residual path (StyleGAN2's resnet D)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv0 = EqualConv(in_channels, in_channels, 3)
        self.conv1 = EqualConv(in_channels, out_channels, 3)
        self.skip = EqualConv(in_channels, out_channels, 1, activate=False, bias=False)

    def forward(self, x):
        y = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        return (y + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


class Discriminator(nn.Module):
    """D(x) -> one logit per image; ``patch=True`` gives CDC's patch-level logits instead (one per position of the
    ``patch_resolution`` feature map). ``layers`` lists the modules from the input side (FreezeD's "lower" layers
    come first): from_rgb, one block per resolution, the 4x4 epilogue."""

    def __init__(self, cfg: GanNetworkConfig, resolution: int):
        super().__init__()
        res = resolutions(resolution)
        if cfg.patch_resolution not in res[:-1]:
            raise ValueError(f"gan.network.patch_resolution: must be one of {res[:-1]} at {resolution} px, not {cfg.patch_resolution}")
        self.cfg, self.resolution = cfg, resolution
        self.from_rgb = EqualConv(3, cfg.channels(resolution), 1)
        self.blocks = nn.ModuleList(DiscriminatorBlock(cfg.channels(r), cfg.channels(r // 2)) for r in reversed(res[1:]))
        c4 = cfg.channels(4)
        self.epilogue = nn.ModuleDict({"conv": EqualConv(c4 + 1, c4, 3), "fc": EqualLinear(c4 * 16, c4, activate=True),
                                       "out": EqualLinear(c4, 1)})
        self.patch_head = EqualConv(cfg.channels(cfg.patch_resolution), 1, 1, activate=False)

    @property
    def layers(self) -> list[nn.Module]:
        return [self.from_rgb, *self.blocks, self.epilogue]

    def _minibatch_stddev(self, x):
        n, c, h, w = x.shape
        g = min(self.cfg.mbstd_group, n)
        if n % g:
            g = 1
        y = x.reshape(g, n // g, c, h, w)
        y = (y - y.mean(0)).pow(2).mean(0).add(1e-8).sqrt().mean((1, 2, 3))  # n/g
        y = y.reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y], 1)

    def forward(self, x, patch: bool = False):
        h = self.from_rgb(x)
        size = self.resolution
        for block in self.blocks:
            h = block(h)
            size //= 2
            if patch and size == self.cfg.patch_resolution:
                return self.patch_head(h).flatten(1)
        h = self.epilogue["conv"](self._minibatch_stddev(h))
        return self.epilogue["out"](self.epilogue["fc"](h.flatten(1))).squeeze(1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
