"""The table builder on synthetic metric files: every column, seeds aggregated, reported rows apart, missing runs shown."""
import json

import numpy as np
import pandas as pd
import pytest

from domainstudio.report.tables import COMMON, KEYS, TABLES, build_table, run_records, summary_metrics


def _run(root, domain, method, seed, il, fid_value, shots=10, diversity=True):
    d = root / "faces" / domain / f"{shots}shot" / method / f"seed{seed}"
    d.mkdir(parents=True)
    meta = {"world": "faces", "domain": domain, "shots": str(shots), "method": method, "family": "ddpm", "seed": str(seed)}
    (d / "intra_lpips.json").write_text(json.dumps({**meta, "backbone": "embedded", "n_samples": 1000, "intra_lpips": il,
                                                    "std": 0.01, "n_clusters_scored": 10, "n_clusters": 10, "near_copy_fraction": 0.2}))
    (d / "fid.json").write_text(json.dumps({**meta, "fid_backbone": "embedded", "n_samples": 1000, "n_reference": 2000,
                                            "fid": fid_value, "kid": 0.01}))
    (d / "fidelity.json").write_text(json.dumps({**meta, "c2st_accuracy": 0.6 + 0.1 * seed, "c2st_n_test": 1000, "swd": 50.0 + 10 * seed, "precision": 0.9,
                                                 "recall": 0.5, "density": 1.1, "coverage": 0.7}))
    if diversity:
        (d / "diversity.json").write_text(json.dumps({**meta, "factor_diversity": 0.8, "in_domain": 0.9}))
    return d


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "metrics"
    dirs = [_run(root, "babies", "ddpm-ft", s, 0.04 + 0.01 * s, 30.0 + s) for s in range(3)]
    dirs += [_run(root, "babies", "domainstudio", 0, 0.07, 20.0)]
    dirs += [root / "faces" / "sunglasses" / "10shot" / "domainstudio" / "seed0"]  # asked for, never produced
    return dirs


def test_table1_every_column_seeds_and_reported_rows(runs, tmp_path):
    table = build_table(run_records(runs), "table1", tmp_path / "table1.csv", reported="intra_lpips")
    assert list(table.columns) == KEYS + TABLES["table1"] + COMMON + ["reported_note"]
    on_disk = pd.read_csv(tmp_path / "table1.csv")
    assert list(on_disk.columns) == list(table.columns)
    measured = table[table["source"] == "measured"].set_index(["domain", "method"])
    ft = measured.loc[("babies", "ddpm-ft")]
    assert ft["intra_lpips"] == pytest.approx(0.05) and ft["n_seeds"] == 3 and ft["seeds"] == "0,1,2"
    assert ft["std_seeds"] == pytest.approx(np.std([0.04, 0.05, 0.06], ddof=1))
    assert ft["std"] == pytest.approx(0.01)  # std over clusters, averaged over seeds: never mixed with std_seeds
    assert measured.loc[("babies", "domainstudio")]["std_seeds"] is None or np.isnan(measured.loc[("babies", "domainstudio")]["std_seeds"])
    missing = measured.loc[("sunglasses", "domainstudio")]
    assert missing["status"] == "missing" and np.isnan(missing["intra_lpips"])
    reported = table[table["source"] == "reported"]
    assert set(reported["domain"]) == {"babies", "sunglasses"}  # only this table's domains
    assert "CDC" in set(reported["method"]) and (reported["status"] == "reported").all()
    assert not set(reported["method"]) & set(measured.index.get_level_values("method"))
    md = (tmp_path / "table1.md").read_text()
    assert "0.050 ± 0.010 (seeds ± 0.010)" in md and "missing" in md and "reported" in md


def test_markdown_leaves_out_the_cluster_std_of_a_single_cluster():
    """With one training image there is one cluster and no std over clusters: the cell shows none."""
    from domainstudio.report.tables import markdown

    row = {"domain": "babies", "shots": 1, "method": "ddpm-ft", "intra_lpips": 0.154, "std": float("nan"), "std_seeds": 0.011}
    md = markdown(pd.DataFrame([row]), ["intra_lpips", "std", "std_seeds"])
    assert "| 0.154 (seeds ± 0.011) |" in md


def test_table2_fid_and_partially_missing_seeds(runs, tmp_path):
    runs.append(runs[0].parent / "seed7")  # one more seed of ddpm-ft that never ran
    table = build_table(run_records(runs), "table2", tmp_path / "table2.csv", reported="fid")
    ft = table[(table["method"] == "ddpm-ft") & (table["source"] == "measured")].iloc[0]
    assert ft["fid"] == pytest.approx(31.0) and ft["fid_std_seeds"] == pytest.approx(1.0)
    assert ft["status"] == "missing seeds [7]" and ft["backbone"] == "embedded" and ft["in_domain"] == pytest.approx(0.9)
    assert ft["c2st_accuracy"] == pytest.approx(0.7) and ft["c2st_accuracy_std_seeds"] == pytest.approx(0.1)
    assert (ft["precision"], ft["recall"], ft["density"], ft["coverage"]) == pytest.approx((0.9, 0.5, 1.1, 0.7))
    assert ft["precision_std_seeds"] == pytest.approx(0.0)
    assert ft["swd"] == pytest.approx(60.0) and ft["swd_std_seeds"] == pytest.approx(10.0)
    md = (tmp_path / "table2.md").read_text()
    assert "| c2st_accuracy | swd | precision | recall | density | coverage |" in md and "0.700 (seeds ± 0.100)" in md
    assert "c2st_accuracy_std_seeds" not in md
    rep = table[table["source"] == "reported"]
    assert rep["backbone"].str.contains("inception").all() and (rep["n_samples"] == 5000).all()


def test_summary_metrics_is_per_method_mean(runs):
    s = summary_metrics(run_records(runs))
    assert s["ddpm-ft"]["intra_lpips"] == pytest.approx(0.05) and s["domainstudio"]["fid"] == pytest.approx(20.0)
    assert s["ddpm-ft"]["c2st_accuracy"] == pytest.approx(0.7) and s["domainstudio"]["coverage"] == pytest.approx(0.7)
    assert "sunglasses" not in json.dumps(s)


def test_stage_times_and_wall_span_from_benchmark_files(tmp_path):
    import os

    from domainstudio.report.document import benchmark_jobs, stage_times, wall_span

    header = "s\th:m:s\tmax_rss\n"
    jobs = {"adapt/a.tsv": (100.0, 1000.0), "adapt/b.tsv": (50.0, 1030.0), "sample/a.tsv": (20.0, 1200.0)}  # (s, end)
    for name, (seconds, end) in jobs.items():
        f = tmp_path / name
        f.parent.mkdir(exist_ok=True)
        f.write_text(header + f"{seconds}\t0:00:00\t1\n")
        os.utime(f, (end, end))
    jobs = benchmark_jobs(tmp_path)
    times = stage_times(jobs)
    assert times.loc["adapt"].tolist() == [2, 150.0] and times.loc["sample"].tolist() == [1, 20.0]
    assert wall_span(jobs) == (900.0, 1200.0)  # adapt/a started at 1000 - 100; sample ended last
    assert wall_span(benchmark_jobs(tmp_path / "empty")) is None


def test_report_states_the_wall_times(tmp_path):
    import os

    from pathlib import Path

    import yaml

    from domainstudio.report.document import write_report

    bench = tmp_path / "logs"
    for name, (seconds, end) in {"adapt/a.tsv": (100.0, 1000.0), "report/table1.tsv": (1.0, 1500.0), "sample/b.tsv": (10.0, 1800.0)}.items():
        f = bench / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")
        os.utime(f, (end, end))
    config = yaml.safe_load(open(Path(__file__).parents[1] / "params.yaml"))
    (tmp_path / "results").mkdir()
    write_report(config, tmp_path / "results", bench, tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "last job's end before this report: **15.0 min**" in text  # 900 -> 1800 s
    assert "was complete **10.0 min** after the first job started" in text  # 900 -> 1500 s


def test_nearest_neighbours_draws_the_nearest_training_image_unfaded(tmp_path):
    """A sample's nearest training image is drawn with its own pixels: black stays black (a faded neighbour of a dark
    domain looks unlike the sample that copies it)."""
    from PIL import Image

    from domainstudio.report.figures import nearest_neighbours

    black = np.zeros((3, 16, 16, 3), np.uint8)
    out = tmp_path / "nearest.png"
    nearest_neighbours(black, {"ddpm-ft": black}, {"ddpm-ft": np.array([0, 1, 2])}, out)
    grey = np.asarray(Image.open(out).convert("L"))
    dark, faded = (grey < 20).sum(), ((grey > 30) & (grey < 90)).sum()
    assert faded < 0.05 * dark  # three rows of black cells, none of them lightened
