"""Diffusion models: the source model (``source.py``). This package's ``__init__`` stays free of torch and
diffusers so that every CLI verb can catch :class:`SourceModelError` without importing them (~6 s)."""


class SourceModelError(RuntimeError):
    """The source model cannot be loaded; the message says what to provide."""
