"""Text-to-image DomainStudio on Stable Diffusion.

DreamBooth-style fine-tuning of the latent-space UNet with an instance prompt and class-prior preservation,
plus DomainStudio's relative-distance and high-frequency terms from :mod:`domainstudio.adapt.losses` (shared
with the unconditional method), computed in pixel space on VAE-decoded predicted x0.

This ``__init__`` stays free of torch: the Snakefile reads :data:`T2I_METHODS` at parse time.
"""

# Method -> whether it uses DomainStudio's terms. ``dreambooth`` is the baseline: the same trainer with the
# DomainStudio weights at 0 (prior preservation only).
T2I_METHODS = {"dreambooth": False, "domainstudio-t2i": True}
