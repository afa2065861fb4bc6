"""Building a release (docs/releases.md): a trained source DDPM or source GAN with its quality curve (``quality_curve.py``:
each snapshot's samples scored against fresh source images), sample grid and manifest, or the embedded metric backbone
with its sanity numbers (``build.py``). The manifest that every loader checks is :mod:`domainstudio.manifest`."""
