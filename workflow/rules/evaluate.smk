# Evaluation: the embedded metric backbone (released, or trained here), Intra-LPIPS (CDC's protocol) with the near-copy fraction,
# FID/KID against cached reference statistics, the fidelity measures (classifier two-sample test on pixels; precision, recall,
# density and coverage on the FID features), and ground-truth factor diversity (embedded worlds).


if EMBEDDED_BACKBONE_RELEASE:

    localrules:
        import_backbone,

    rule import_backbone:
        """The released embedded metric backbone (evaluate.embedded_backbone), checked against its manifest."""
        input:
            EMBEDDED_BACKBONE_RELEASE,
        output:
            directory("models/{world}/metric_backbone"),
        params:
            resolution=RESOLUTION,
        log:
            "logs/import_backbone/{world}.log",
        shell:
            "domainstudio import-backbone --release {input} --out {output} --resolution {params.resolution} > {log} 2>&1"

else:

    rule train_backbone:
        input:
            source="data/{world}/source",
            references=backbone_training_references,
        output:
            directory("models/{world}/metric_backbone"),
        params:
            cfg=json.dumps(config["evaluate"].get("backbone_train", {})),
            resolution=RESOLUTION,
        threads: TRAINING_THREADS
        resources:
            mem_mb=8000,
            runtime=60,
        log:
            "logs/train_backbone/{world}.log",
        benchmark:
            "logs/benchmarks/train_backbone/{world}.tsv",
        shell:
            "domainstudio train-backbone --world {wildcards.world} --data-root data/{wildcards.world} "
            "--resolution {params.resolution} --config-json {params.cfg:q} --threads {threads} --out {output} > {log} 2>&1"


rule evaluate:
    """Intra-LPIPS with the near-copy fraction, FID/KID, the fidelity measures and (embedded worlds) factor diversity of
    one run's samples."""
    input:
        samples=f"samples/{RUN}",
        train=KSHOT,
        reference="data/{world}/{domain}/reference",
        stats=f"results/reference_stats/{{world}}/{{domain}}/{FID_BACKBONE}.npz",
        backbone=evaluate_backbone_input,
    output:
        intra_lpips=f"results/metrics/{RUN}/intra_lpips.json",
        fid=f"results/metrics/{RUN}/fid.json",
        fidelity=f"results/metrics/{RUN}/fidelity.json",
        diversity=[f"results/metrics/{RUN}/diversity.json"] if EMBEDDED else [],
    params:
        args=evaluate_args,
    threads: JOB_THREADS
    resources:
        mem_mb=8000,
        runtime=30,
    log:
        run_log("evaluate"),
    benchmark:
        run_benchmark("evaluate"),
    shell:
        "domainstudio evaluate {params.args} > {log} 2>&1"


rule reference_stats:
    input:
        reference="data/{world}/{domain}/reference",
        backbone=fid_backbone_input,
    output:
        "results/reference_stats/{world}/{domain}/{fid_backbone}.npz",
    params:
        embedded=reference_stats_backbone_arg,
        resolution=RESOLUTION,
    threads: JOB_THREADS
    resources:
        mem_mb=8000,
        runtime=30,
    log:
        "logs/reference_stats/{world}_{domain}_{fid_backbone}.log",
    benchmark:
        "logs/benchmarks/reference_stats/{world}_{domain}_{fid_backbone}.tsv",
    shell:
        "domainstudio reference-stats --images {input.reference} --resolution {params.resolution} "
        "--backbone {wildcards.fid_backbone} {params.embedded} --threads {threads} --out {output} > {log} 2>&1"


rule calibrate:
    """Every fidelity measure of one domain's reference images under controlled degradations (docs/metrics.md)."""
    input:
        reference="data/{world}/{domain}/reference",
        backbone="models/{world}/metric_backbone",
    output:
        "results/calibration/{world}/{domain}.csv",
    params:
        args=calibrate_arguments,
        resolution=RESOLUTION,
    threads: JOB_THREADS
    resources:
        mem_mb=8000,
        runtime=30,
    log:
        "logs/calibrate/{world}_{domain}.log",
    benchmark:
        "logs/benchmarks/calibrate/{world}_{domain}.tsv",
    shell:
        "domainstudio calibrate --world {wildcards.world} --domain {wildcards.domain} --reference {input.reference} "
        "--resolution {params.resolution} --embedded-backbone {input.backbone} {params.args} --threads {threads} "
        "--out {output} > {log} 2>&1"
