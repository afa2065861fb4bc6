"""The claims table: the Welch interval against the formula written out, the verdicts, each measure's direction, the
rows a configuration gets, and the files the verb writes."""
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from snakemake.utils import validate

from domainstudio.report.claims import (COLUMNS, DIVERSITY, FIDELITY, STYLE, STYLE_MARGIN, Measure, claims_table,
                                        comparisons, seeds_needed, undecided_cells, verdict, verdict_matrix,
                                        welch_interval, write_claims)
from domainstudio.report.tables import run_records
from tests.conftest import ROOT

HIGHER, LOWER = Measure("x", "more", "higher"), Measure("y", "better", "lower")


def test_welch_interval_against_the_written_out_formula():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 9.0]
    # mean 2.5, s^2 = 5/3; mean 5, s^2 = 13: se^2 = (5/3)/4 + 13/3 = 19/4
    # nu = se^4 / ((5/12)^2 / 3 + (13/3)^2 / 2) = 9747/4081 = 2.38838...
    se2, nu = 19 / 4, 9747 / 4081
    half = stats.t.ppf(0.975, nu) * math.sqrt(se2)
    low, high, df = welch_interval(a, b)
    assert df == pytest.approx(nu, rel=1e-12)
    assert (low, high) == pytest.approx((-2.5 - half, -2.5 + half), rel=1e-12)
    assert (low, high) == pytest.approx((-10.5575435, 5.5575435), abs=1e-6)  # scipy's Welch test gives the same
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ref.low, ref.high), rel=1e-12)


def test_welch_interval_unequal_sizes_and_variances_differ_from_pooled():
    a, b = [10.0, 10.5, 11.0], [1.0, 5.0, 9.0, 13.0, 17.0]
    low, high, _ = welch_interval(a, b)
    pooled = stats.ttest_ind(a, b, equal_var=True).confidence_interval(0.95)
    assert (low, high) != pytest.approx((pooled.low, pooled.high), rel=1e-3)  # the test above can tell the two apart


def test_welch_interval_edge_cases():
    assert all(np.isnan(welch_interval([1.0], [1.0, 2.0])))  # one seed: no interval
    assert all(np.isnan(welch_interval([1.0, 2.0], [])))
    low, high, df = welch_interval([0.9, 0.9], [1.0, 1.0, 1.0])  # no spread on either side: the point difference
    assert low == high == pytest.approx(-0.1) and np.isnan(df)
    low, high, df = welch_interval([1.0, 1.0, 1.0], [0.0, 1.0, 2.0])  # one side without spread: nu = n_b - 1
    assert df == pytest.approx(2.0) and (low + high) / 2 == pytest.approx(0.0)


@pytest.mark.parametrize("measure, low, high, expected", [
    (HIGHER, 0.1, 0.3, "holds"), (HIGHER, -0.3, -0.1, "fails"), (HIGHER, -0.1, 0.3, "undecided"), (HIGHER, 0.0, 0.2, "undecided"),
    (LOWER, -3.0, -1.0, "holds"), (LOWER, 1.0, 3.0, "fails"), (LOWER, -1.0, 3.0, "undecided"),
])
def test_verdict_constructed_cases(measure, low, high, expected):
    assert verdict(low, high, 3, 3, measure) == expected


def test_verdict_without_an_interval():
    assert verdict(np.nan, np.nan, 1, 3, HIGHER) == "undecided (1 seed)"
    assert verdict(np.nan, np.nan, 3, 1, LOWER) == "undecided (1 seed)"
    assert verdict(np.nan, np.nan, 0, 3, HIGHER) == "undecided (no values)"


def test_style_kept_is_a_non_inferiority_claim():
    style = STYLE[0]
    assert style.name == "in_domain" and style.better == "higher" and style.margin == STYLE_MARGIN == 0.05
    assert style.claimed == "d > -0.05"
    assert verdict(-0.04, 0.0, 3, 3, style) == "holds"        # at most 4 points worse: kept
    assert verdict(-0.04, 0.0, 3, 3, HIGHER) == "undecided"   # the same interval does not show "more"
    assert verdict(-0.2, -0.06, 3, 3, style) == "fails"
    assert verdict(-0.1, 0.02, 3, 3, style) == "undecided"
    assert verdict(0.0, 0.0, 3, 3, style) == "holds"          # both at 1.0 with no spread


def test_each_measure_has_the_direction_of_the_paper():
    assert {m.name: m.better for m in DIVERSITY + FIDELITY} == {
        "intra_lpips": "higher", "fid": "lower", "kid": "lower", "c2st_accuracy": "lower", "swd": "lower", "precision": "higher",
        "density": "higher"}
    assert all(m.margin == 0 for m in DIVERSITY + FIDELITY)
    assert FIDELITY[0].claimed == "d < 0" and DIVERSITY[0].claimed == "d > 0"


def _records(values: dict, world="faces", domain="babies", shots=10) -> pd.DataFrame:
    """run_records' shape: values = {method: {measure: [per-seed values]}}."""
    rows = []
    for method, measures in values.items():
        n = len(next(iter(measures.values())))
        for s in range(n):
            rows.append({"world": world, "domain": domain, "shots": shots, "method": method, "seed": s, "status": "measured",
                         **{k: v[s] for k, v in measures.items()}})
    return pd.DataFrame(rows)


def test_directions_decide_the_verdicts_end_to_end():
    ds = {"intra_lpips": [0.50, 0.52, 0.51], "fid": [10.0, 11.0, 12.0], "kid": [0.010, 0.011, 0.012],
          "c2st_accuracy": [0.60, 0.62, 0.61], "swd": [50.0, 55.0, 60.0], "precision": [0.80, 0.82, 0.81],
          "density": [0.9, 1.0, 1.1], "in_domain": [0.95, 0.96, 0.97]}
    ft = {"intra_lpips": [0.40, 0.41, 0.42], "fid": [20.0, 21.0, 22.0], "kid": [0.020, 0.021, 0.022],
          "c2st_accuracy": [0.70, 0.71, 0.72], "swd": [80.0, 90.0, 85.0], "precision": [0.60, 0.61, 0.62],
          "density": [0.5, 0.6, 0.7], "in_domain": [0.96, 0.97, 0.98]}
    df = claims_table(_records({"domainstudio": ds, "ddpm-ft": ft})).set_index("measure")
    assert (df["verdict"] == "holds").all(), df["verdict"]   # better on all, style within the margin
    assert df.loc["fid", "difference"] == pytest.approx(-10.0) and df.loc["fid", "ci_high"] < 0
    assert df.loc["precision", "ci_low"] > 0
    swapped = claims_table(_records({"domainstudio": ft, "ddpm-ft": ds})).set_index("measure")
    assert (swapped.drop(index="in_domain")["verdict"] == "fails").all()
    assert swapped.loc["in_domain", "verdict"] == "holds"     # 0.01 better: kept either way
    assert (df["n_seeds_variant"] == 3).all() and (df["n_seeds_baseline"] == 3).all()


def test_rows_per_configuration():
    rows = comparisons(["ddpm-ft", "domainstudio", "domainstudio-official", "ddpm-ft-official", "dpms-ant", "tgan", "cdc"])
    pairs = [(v, b, kind) for v, b, kind, _ in rows]
    assert pairs == [("domainstudio", "ddpm-ft", "claim"), ("domainstudio", "tgan", "claim"), ("domainstudio", "cdc", "claim"),
                     ("domainstudio", "dpms-ant", "comparison"),
                     ("domainstudio-official", "ddpm-ft-official", "claim"), ("domainstudio-official", "tgan", "claim"),
                     ("domainstudio-official", "cdc", "claim"), ("domainstudio-official", "dpms-ant", "comparison")]
    gan = next(m for v, b, _, m in rows if b == "tgan")
    assert [m.name for m in gan] == ["intra_lpips", "fid", "kid", "c2st_accuracy", "swd", "precision", "density"]  # no style
    assert comparisons(["domainstudio-official", "ddpm-ft"])[0][1] == "ddpm-ft"  # no official twin: the plain one
    assert comparisons(["ddpm-ft", "dpms-ant", "tgan"]) == []                   # no DomainStudio variant: no rows


def _run(root, domain, method, seed, il, fid_value, fidelity=True):
    d = root / "faces" / domain / "10shot" / method / f"seed{seed}"
    d.mkdir(parents=True)
    meta = {"world": "faces", "domain": domain, "shots": "10", "method": method, "family": "ddpm", "seed": str(seed)}
    (d / "intra_lpips.json").write_text(json.dumps({**meta, "intra_lpips": il, "std": 0.01}))
    (d / "fid.json").write_text(json.dumps({**meta, "fid": fid_value, "kid": 0.01}))
    if fidelity:
        (d / "fidelity.json").write_text(json.dumps({**meta, "c2st_accuracy": 0.6, "swd": 40.0, "precision": 0.9, "recall": 0.5,
                                                     "density": 1.1, "coverage": 0.7}))
    return d


def test_written_files_one_seed_and_missing_runs(tmp_path):
    root = tmp_path / "metrics"
    dirs = [_run(root, "babies", "ddpm-ft", 0, 0.4, 30.0), _run(root, "babies", "domainstudio", 0, 0.5, 20.0),
            _run(root, "babies", "tgan", 0, 0.3, 40.0, fidelity=False)]
    dirs += [root / "faces" / "sketches" / "10shot" / m / "seed0" for m in ("ddpm-ft", "domainstudio")]  # never produced
    df = write_claims(run_records(dirs), tmp_path / "claims.csv")
    csv = pd.read_csv(tmp_path / "claims.csv")
    assert list(csv.columns) == COLUMNS and len(csv) == len(df)
    babies = csv[csv.domain == "babies"]
    assert set(babies.verdict) == {"undecided (1 seed)", "undecided (no values)"}
    assert set(babies.measure) == {"intra_lpips", "fid", "kid", "c2st_accuracy", "swd", "precision", "density"}  # no in_domain files
    tgan_c2st = babies[(babies.baseline == "tgan") & (babies.measure == "c2st_accuracy")].iloc[0]
    assert tgan_c2st.verdict == "undecided (no values)" and tgan_c2st.n_seeds_baseline == 0
    sketches = csv[csv.domain == "sketches"]
    assert set(sketches.measure) == {"intra_lpips", "fid", "kid", "c2st_accuracy", "swd", "precision", "density"}
    assert set(sketches.status) == {"domainstudio missing; ddpm-ft missing"} and set(sketches.verdict) == {"undecided (no values)"}
    md = (tmp_path / "claims.md").read_text()
    assert md.startswith("- Claims of the paper: undecided (1 seed) ") and "| babies | 10 | domainstudio | ddpm-ft | claim | more diverse |" in md


def test_report_includes_the_claims(tmp_path):
    from pathlib import Path

    import yaml

    from domainstudio.report.document import write_report

    results = tmp_path / "results"
    results.mkdir()
    write_claims(_records({"domainstudio": {"fid": [1.0, 2.0]}, "ddpm-ft": {"fid": [3.0, 5.0]}}), results / "claims.csv")
    config = yaml.safe_load(open(Path(__file__).parents[1] / "params.yaml"))
    write_report(config, results, tmp_path / "logs", tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "## Claims of the paper, decided over seeds" in text and "CSV: `results/claims.csv`" in text


def test_undecided_cells_name_both_sides_of_open_claims_only():
    apart = {"intra_lpips": [0.50, 0.51, 0.52], "fid": [10.0, 11.0, 12.0]}
    close = {"intra_lpips": [0.40, 0.60, 0.50], "fid": [9.0, 13.0, 11.5]}
    far = {"intra_lpips": [0.10, 0.11, 0.12], "fid": [50.0, 51.0, 52.0]}
    runs = pd.concat([_records({"domainstudio": apart, "ddpm-ft": far}, domain="babies"),
                      _records({"domainstudio": apart, "tgan": close, "ddpm-ft": far, "dpms-ant": close}, domain="sketches")])
    df = claims_table(runs)
    assert set(df.loc[df.domain == "babies", "verdict"]) == {"holds"}   # every babies claim decided: no cell
    assert undecided_cells(df) == {"sketches": ["domainstudio", "tgan"]}  # the comparison with dpms-ant is not a claim
    assert undecided_cells(df, ("claim", "comparison")) == {"sketches": ["domainstudio", "dpms-ant", "tgan"]}
    one_seed = claims_table(_records({"domainstudio": {"intra_lpips": [0.5]}, "ddpm-ft": {"intra_lpips": [0.4]}}))
    assert undecided_cells(one_seed) == {"babies": ["ddpm-ft", "domainstudio"]}


def test_seeds_to_decide_writes_a_valid_overlay(tmp_path):
    """The planner's overlay passes the schema and names the undecided cells."""
    runs = pd.concat([_records({"domainstudio": {"intra_lpips": [0.4, 0.6, 0.5]}, "tgan": {"intra_lpips": [0.45, 0.5, 0.55]}},
                               domain=d) for d in ("babies", "sketches")])
    claims_table(runs).to_csv(tmp_path / "claims.csv", index=False)
    out = subprocess.run([sys.executable, str(ROOT / "experiments" / "seeds_to_decide.py"), "--claims", str(tmp_path / "claims.csv"),
                          "--seeds", "3", "4"], check=True, capture_output=True, text=True).stdout
    overlay = yaml.safe_load(out)
    assert overlay == {"extra_seeds": [{"domains": [d], "methods": ["domainstudio", "tgan"], "seeds": [3, 4]} for d in ("babies", "sketches")]}
    assert "&" not in out and "*" not in out  # plain lists a reader can edit, no YAML anchors
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(overlay, methods=["domainstudio", "tgan"])
    validate(params, str(ROOT / "workflow" / "schemas" / "params.schema.yaml"))


def test_verdict_matrix_has_one_line_per_pair_and_each_verdict_in_its_column():
    ds = {"intra_lpips": [0.50, 0.51, 0.52], "fid": [10.0, 11.0, 12.0]}
    ft = {"intra_lpips": [0.10, 0.11, 0.12], "fid": [9.0, 13.0, 11.5]}
    gan = {"intra_lpips": [0.60, 0.61, 0.62], "fid": [30.0, 31.0, 32.0]}
    text = verdict_matrix(claims_table(_records({"domainstudio": ds, "ddpm-ft": ft, "tgan": gan})))
    lines = text.splitlines()
    assert lines[0] == "faces / babies / 10 shots:" and lines[2] == "| variant | against | kind | intra_lpips | fid |"
    assert lines[4:] == ["| domainstudio | ddpm-ft | claim | holds | ? |",    # more diverse; FID intervals overlap
                         "| domainstudio | tgan | claim | fails | holds |"]   # less diverse, better FID


def test_seeds_needed_against_the_written_out_condition():
    """s_a = s_b = 1: n seeds per side give se = sqrt(2 / n) and nu = 2 (n - 1). Tabled t_{0.975}: 14 dof 2.1448,
    16 dof 2.1199, 18 dof 2.1009. n = 8: 2.1448 * 0.5 = 1.0724; n = 9: 2.1199 * 0.4714 = 0.9993; n = 10: 2.1009 *
    0.4472 = 0.9396. So a gap of 1 needs 9 seeds and a gap of 0.999 needs 10."""
    assert seeds_needed(1.0, 1.0, 1.0) == 9
    assert seeds_needed(1.0, 1.0, 0.999) == 10
    assert seeds_needed(1.0, 1.0, 1.08) == 8
    # unequal stds: nu(n) = (n - 1) (1 + 4)^2 / (1 + 16) = 25 (n - 1) / 17; at n = 4, nu = 4.41, t = 2.6772,
    # se = sqrt(5 / 4) = 1.1180: 2.9932; at n = 5, nu = 5.88, t = 2.4588, se = 1: 2.4588
    assert seeds_needed(1.0, 2.0, 3.0) == 4 and seeds_needed(1.0, 2.0, 2.99) == 5
    assert np.isnan(seeds_needed(1.0, 1.0, 0.0))            # d on the boundary: no count decides it
    assert np.isnan(seeds_needed(1.0, 1.0, 0.01))           # beyond MOST_SEEDS
    assert seeds_needed(0.0, 0.0, 0.5) == 2


def test_undecided_rows_say_how_many_seeds_would_decide_them(tmp_path):
    ds = {"intra_lpips": [0.45, 0.55, 0.50], "fid": [10.0, 11.0, 12.0]}
    ft = {"intra_lpips": [0.40, 0.50, 0.45], "fid": [10.0, 14.0, 12.0]}
    df = claims_table(_records({"domainstudio": ds, "ddpm-ft": ft}))
    row = df[df.measure == "intra_lpips"].iloc[0]
    assert row.verdict == "undecided"
    # d = 0.05, both stds 0.05: the smallest n with t_{0.975, 2 (n - 1)} * 0.05 * sqrt(2 / n) < 0.05, as above: 9
    assert row.seeds_needed == 9
    assert df[df.verdict != "undecided"].seeds_needed.isna().all()
    write_claims(_records({"domainstudio": ds, "ddpm-ft": ft}), tmp_path / "claims.csv")
    assert "| undecided | 9 |" in (tmp_path / "claims.md").read_text()
    assert undecided_cells(df, within=8) == {} and undecided_cells(df, within=9) == {"babies": ["ddpm-ft", "domainstudio"]}
