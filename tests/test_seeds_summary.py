"""experiments/seeds_summary.py, which makes the README's three-seed table: mean +- sample std over the seeds found."""
import json
import sys

import pytest

from tests.conftest import ROOT


def test_summary_is_the_mean_and_sample_std_over_seeds(tmp_path, capsys, monkeypatch):
    sys.path.insert(0, str(ROOT / "experiments"))
    import seeds_summary

    for seed, (il, fid) in enumerate([(0.4, 10.0), (0.5, 12.0), (0.6, 20.0)]):
        run = tmp_path / "faces" / "babies" / "10shot" / "domainstudio" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "intra_lpips.json").write_text(json.dumps({"family": "ddpm", "intra_lpips": il, "near_copy_fraction": 0.1}))
        (run / "fid.json").write_text(json.dumps({"fid": fid}))
        (run / "diversity.json").write_text(json.dumps({"in_domain": 1.0, "factor_diversity": 0.9}))
    monkeypatch.setattr(sys, "argv", ["seeds_summary", "--results", str(tmp_path), "--methods", "domainstudio", "--domains", "babies"])
    seeds_summary.main()
    out = capsys.readouterr().out
    assert "| domainstudio | 0.500 +- 0.100 (n=3) |" in out  # Intra-LPIPS: mean 0.5, std (n - 1) 0.1
    assert "| domainstudio | 14.0 +- 5.3 (n=3) |" in out     # FID: mean 14, std sqrt(28) = 5.29
    assert "| domainstudio | 0.10 +- 0.00 (n=3) |" in out and "| domainstudio | 1.00 +- 0.00 (n=3) |" in out


def test_wide_has_every_measure_with_the_std_over_seeds(tmp_path, capsys, monkeypatch):
    sys.path.insert(0, str(ROOT / "experiments"))
    import seeds_summary

    for seed, (fid, c2st) in enumerate([(10.0, 0.90), (12.0, 0.94), (20.0, 0.98)]):
        run = tmp_path / "faces" / "sketches" / "10shot" / "tgan" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "intra_lpips.json").write_text(json.dumps({"family": "gan", "intra_lpips": 0.3, "near_copy_fraction": 0.0}))
        (run / "fid.json").write_text(json.dumps({"fid": fid}))
        (run / "fidelity.json").write_text(json.dumps({"c2st_accuracy": c2st, "swd": 100.0 + seed, "precision": 0.5,
                                                      "density": 0.4, "recall": 0.1, "coverage": 0.2}))
    monkeypatch.setattr(sys, "argv", ["seeds_summary", "--results", str(tmp_path), "--methods", "tgan", "--domains", "sketches", "--wide"])
    seeds_summary.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| domain | method | Intra-LPIPS | near-copy | FID | c2st | swd |")
    # FID 14.0 +- sqrt(28); c2st 0.94 +- 0.04; swd 101 +- 1; no in-domain files: "-"
    assert out[2] == "| sketches | tgan | 0.300 +- 0.000 | 0.00 | 14.0 +- 5.3 | 0.940 +- 0.040 | 101 +- 1 | 0.50 +- 0.00 | 0.40 +- 0.00 | 0.10 | 0.20 | - | 3 |"


def test_no_runs_stops_with_the_folder_named(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "experiments"))
    import seeds_summary

    monkeypatch.setattr(sys, "argv", ["seeds_summary", "--results", str(tmp_path), "--world", "churches", "--methods", "ddpm-ft"])
    with pytest.raises(SystemExit, match=f"no runs under {tmp_path}/churches"):
        seeds_summary.main()
