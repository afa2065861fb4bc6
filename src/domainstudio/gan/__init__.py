"""GAN baselines of the paper's tables: a small StyleGAN2-style source GAN and its few-shot adaptations
(TGAN, FreezeD, EWC, CDC), sampled into the same PNG folders as the diffusion methods."""
