"""Diffusion models: the source model (``source.py``). This package's ``__init__`` stays free of torch and
diffusers so that every CLI verb can catch :class:`SourceModelError` without importing them (~6 s)."""


def is_hub_id(name) -> bool:
    """Whether a source model name that is not a local folder reads as a Hugging Face hub id, 'owner/name'."""
    return not str(name).startswith((".", "/")) and str(name).count("/") == 1


class SourceModelError(RuntimeError):
    """The source model cannot be loaded; the message says what to provide."""
