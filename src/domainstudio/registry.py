"""The methods the workflow knows, which settings each reads, and the constants of the relative-distance terms that
the diffusion, GAN and text-to-image objectives share. Free of torch: the Snakefile reads it at parse time."""
from __future__ import annotations

# Every adaptation method the workflow knows, and its family (the tables' ``family`` column); the schema's ``methods``
# enum lists the same names.
METHOD_FAMILIES = {
    "ddpm-ft": "ddpm",
    "ds-img": "ddpm",
    "ds-img-hf": "ddpm",
    "domainstudio": "ddpm",
    "domainstudio-paper": "ddpm",
    "domainstudio-official": "ddpm",   # the released code's configuration (adapt.official)
    "ddpm-ft-official": "ddpm",        # plain fine-tuning under the same protocol
    "dpms-ant": "ddpm",   # DPMs-ANT (ICML 2024): adaptors, similarity guidance, adversarial noise (adapt/ant.py)
    # GAN baselines (src/domainstudio/gan/methods.py): TGAN, FreezeD, EWC, CDC
    "tgan": "gan",
    "freezed": "gan",
    "ewc": "gan",
    "cdc": "gan",
}
PAIRWISE_METHODS = ("ds-img", "ds-img-hf", "domainstudio", "domainstudio-paper", "domainstudio-official")
# A relative-distance term compares each sample with the others of its batch through a softmax over j != i: with 2
# samples that softmax has one entry, p = 1 for both models and the KL is 0. Every pairwise term needs at least 3.
MIN_PAIRWISE_SAMPLES = 3
# The two readings of the relative-distance KL (relative_distance.py) and its two reductions over samples.
KL_DIRECTIONS = ("paper", "official")
PAIRWISE_REDUCTIONS = ("sum", "mean")
# Methods trained with adapt.paper's weights and options (the settings the paper's text gives) instead of adapt.weights/options.
PAPER_SETTINGS_METHODS = ("domainstudio-paper",)
# Methods trained and sampled with adapt.official (the released code's configuration): its train block overrides
# adapt.train, its weights and options replace adapt.weights and adapt.options, its sample block overrides sample.
OFFICIAL_SETTINGS_METHODS = ("domainstudio-official", "ddpm-ft-official")
# Methods trained with adapt.ant (DPMs-ANT): adaptors on the frozen source, a domain classifier on the source images.
ANT_METHODS = ("dpms-ant",)


def check_choices(options, where: str, choices: dict[str, tuple]) -> None:
    """Each named field of an options dataclass is one of its choices; a ValueError names ``where.field``."""
    for name, allowed in choices.items():
        value = getattr(options, name)
        if value not in allowed:
            raise ValueError(f"{where}.{name}: one of {list(allowed)}, not {value!r}")
