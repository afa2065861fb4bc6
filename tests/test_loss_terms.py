"""experiments/loss_terms.py: each loss term's weighted mean over an adaptation's steps and its share of their sum."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT


def _run(tmp_path, weights, log):
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame(log).to_csv(run / "train_log.csv", index=False)
    (run / "adaptation.json").write_text(json.dumps({"weights": weights}))
    return run


def test_weighted_means_and_shares(tmp_path):
    sys.path.insert(0, str(ROOT / "experiments"))
    from loss_terms import term_shares
    run = _run(tmp_path, {"l_img": 4.0, "l_hf": 4.0, "l_hfmse": 1.0},
               {"step": [1, 2], "l_simple": [0.1, 0.3], "l_img": [0.01, 0.03], "l_hf": [0.0, 0.1], "l_hfmse": [10.0, 30.0],
                "grad_norm": [1.0, 3.0]})
    got = term_shares(run)
    # weighted means: 1 * 0.2, 4 * 0.02, 4 * 0.05, 1 * 20 -> sum 20.48
    assert got["l_simple (weighted mean)"] == pytest.approx(0.2)
    assert got["l_img (weighted mean)"] == pytest.approx(0.08)
    assert got["l_hf (weighted mean)"] == pytest.approx(0.2)
    assert got["l_hfmse share"] == pytest.approx(20.0 / 20.48)
    assert got["grad_norm (mean)"] == pytest.approx(2.0)
    first = term_shares(run, (1, 1))  # the first logged step alone (steps are numbered from 1)
    assert first["l_hfmse (weighted mean)"] == pytest.approx(10.0) and first["l_simple (weighted mean)"] == pytest.approx(0.1)


def test_a_folder_without_a_train_log_is_named(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "experiments" / "loss_terms.py"), str(tmp_path / "nothing")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "nothing" in out.stderr
