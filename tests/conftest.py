import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def project_files() -> list[str]:
    """The files a fresh clone of the project has (tracked, plus untracked files git does not ignore)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


def copy_project(dest: Path) -> Path:
    import shutil

    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dest


def assert_nested_shot_sets_and_disjoint_reference(out, shots=(1, 5, 10), reference=12):
    """A rendered target domain's layout (data/world.py render_target): each K-shot set the first K images of the
    next larger one, byte for byte, and a reference set of distinct images none of which is a training image."""
    sets = {k: sorted(p.name for p in (out / f"{k}shot").glob("*.png")) for k in shots}
    assert [len(sets[k]) for k in shots] == list(shots)
    for small, large in zip(shots, shots[1:]):
        for name in sets[small]:
            assert (out / f"{small}shot" / name).read_bytes() == (out / f"{large}shot" / name).read_bytes()
    ref = {p.read_bytes() for p in (out / "reference").glob("*.png")}
    train = {p.read_bytes() for p in (out / f"{shots[-1]}shot").glob("*.png")}
    assert len(ref) == reference and not ref & train


def noise_image_folder(folder, n, size=16):
    """``n`` seeded random-noise PNGs of ``size`` px in a new ``folder`` (stand-in K-shot images for CLI tests)."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def tiny_unet(resolution=16):
    import torch

    from domainstudio.models.source import UNetConfig, build_unet

    torch.manual_seed(0)
    return build_unet(UNetConfig(block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4), resolution)


def run(cmd, cwd, env=None, check=True, timeout=900):
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc
