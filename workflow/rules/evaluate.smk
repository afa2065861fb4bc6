# Evaluation: the embedded metric backbone (released, or trained here), Intra-LPIPS (CDC's protocol) with the near-copy fraction,
# FID/KID against cached reference statistics, and ground-truth factor diversity (embedded worlds).


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
            references=lambda w: [f"data/{w.world}/{d}/reference" for d in embedded_domains(w.world)],
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
    """Intra-LPIPS with the near-copy fraction, FID/KID and (embedded worlds) factor diversity of one run's samples."""
    input:
        samples=f"samples/{RUN}",
        train=KSHOT,
        reference="data/{world}/{domain}/reference",
        stats=f"results/reference_stats/{{world}}/{{domain}}/{FID_BACKBONE}.npz",
        backbone=lambda w: sorted(set(lpips_backbone_input(w) + fid_backbone_input(w) + ([f"models/{w.world}/metric_backbone"] if EMBEDDED else []))),
    output:
        intra_lpips=f"results/metrics/{RUN}/intra_lpips.json",
        fid=f"results/metrics/{RUN}/fid.json",
        diversity=[f"results/metrics/{RUN}/diversity.json"] if EMBEDDED else [],
    params:
        lpips=lpips_backbone_args,
        fid=f"--fid-backbone {FID_BACKBONE}",
        diversity=lambda w, output: f"--diversity {output.diversity[0]}" if EMBEDDED else "",
        cap=config["evaluate"]["cluster_cap"],
        quantile=config["evaluate"].get("near_copy_quantile", 0.05),
        seed=config["evaluate"]["seed"],
        resolution=RESOLUTION,
        family=method_family,
    threads: JOB_THREADS
    resources:
        mem_mb=8000,
        runtime=30,
    log:
        run_log("evaluate"),
    benchmark:
        run_benchmark("evaluate"),
    shell:
        "domainstudio evaluate --samples {input.samples} --train {input.train} --shots {wildcards.shots} "
        "--reference {input.reference} --reference-stats {input.stats} --resolution {params.resolution} "
        "{params.lpips} {params.fid} --cluster-cap {params.cap} --near-copy-quantile {params.quantile} "
        "--seed {params.seed} --threads {threads} --intra-lpips-out {output.intra_lpips} --fid-out {output.fid} "
        "{params.diversity} --meta world={wildcards.world} domain={wildcards.domain} shots={wildcards.shots} "
        "method={wildcards.method} family={params.family} seed={wildcards.seed} > {log} 2>&1"


rule reference_stats:
    input:
        reference="data/{world}/{domain}/reference",
        backbone=fid_backbone_input,
    output:
        "results/reference_stats/{world}/{domain}/{fid_backbone}.npz",
    params:
        embedded=lambda w, input: f"--embedded-backbone {input.backbone}" if input.backbone else "",
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
