# Evaluation (DESIGN §3): the embedded metric backbone, Intra-LPIPS (CDC's protocol) with the near-copy fraction,
# FID/KID against cached reference statistics, and ground-truth factor diversity (embedded worlds).


rule train_backbone:
    input:
        source="data/{world}/source",
        references=lambda w: [f"data/{w.world}/{d}/reference" for d in embedded_domains(w.world)],
    output:
        directory("models/{world}/metric_backbone"),
    params:
        cfg=json.dumps(config["evaluate"].get("backbone_train", {})),
        resolution=RESOLUTION,
    threads: 4
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


rule intra_lpips:
    input:
        samples="samples/{world}/{domain}/{shots}shot/{method}/seed{seed}",
        train="data/{world}/{domain}/{shots}shot",
        reference="data/{world}/{domain}/reference",
        backbone=lpips_backbone_input,
    output:
        "results/metrics/{world}/{domain}/{shots}shot/{method}/seed{seed}/intra_lpips.json",
    params:
        backbone=lpips_backbone_args,
        cap=config["evaluate"]["cluster_cap"],
        quantile=config["evaluate"].get("near_copy_quantile", 0.05),
        seed=config["evaluate"]["seed"],
        resolution=RESOLUTION,
        family=method_family,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/intra_lpips/{world}_{domain}_{shots}shot_{method}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/intra_lpips/{world}_{domain}_{shots}shot_{method}_seed{seed}.tsv",
    shell:
        "domainstudio intra-lpips --samples {input.samples} --train {input.train} --shots {wildcards.shots} "
        "--reference {input.reference} --near-copy-quantile {params.quantile} "
        "--resolution {params.resolution} {params.backbone} "
        "--cluster-cap {params.cap} --seed {params.seed} --threads {threads} --out {output} "
        "--meta world={wildcards.world} domain={wildcards.domain} shots={wildcards.shots} "
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
    threads: 2
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


rule fid:
    input:
        samples="samples/{world}/{domain}/{shots}shot/{method}/seed{seed}",
        stats=f"results/reference_stats/{{world}}/{{domain}}/{FID_BACKBONE}.npz",
        backbone=fid_backbone_input,
    output:
        "results/metrics/{world}/{domain}/{shots}shot/{method}/seed{seed}/fid.json",
    params:
        embedded=lambda w, input: f"--embedded-backbone {input.backbone}" if input.backbone else "",
        seed=config["evaluate"]["seed"],
        resolution=RESOLUTION,
        family=method_family,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
    log:
        "logs/fid/{world}_{domain}_{shots}shot_{method}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/fid/{world}_{domain}_{shots}shot_{method}_seed{seed}.tsv",
    shell:
        "domainstudio fid --samples {input.samples} --reference-stats {input.stats} --resolution {params.resolution} "
        f"--backbone {FID_BACKBONE} "
        "{params.embedded} --seed {params.seed} --threads {threads} --out {output} "
        "--meta world={wildcards.world} domain={wildcards.domain} shots={wildcards.shots} "
        "method={wildcards.method} family={params.family} seed={wildcards.seed} > {log} 2>&1"


rule diversity:
    input:
        samples="samples/{world}/{domain}/{shots}shot/{method}/seed{seed}",
        reference="data/{world}/{domain}/reference",
        backbone="models/{world}/metric_backbone",
    output:
        "results/metrics/{world}/{domain}/{shots}shot/{method}/seed{seed}/diversity.json",
    params:
        resolution=RESOLUTION,
        family=method_family,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/diversity/{world}_{domain}_{shots}shot_{method}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/diversity/{world}_{domain}_{shots}shot_{method}_seed{seed}.tsv",
    shell:
        "domainstudio diversity --samples {input.samples} --reference {input.reference} --domain {wildcards.domain} "
        "--resolution {params.resolution} --embedded-backbone {input.backbone} --threads {threads} --out {output} "
        "--meta world={wildcards.world} domain={wildcards.domain} shots={wildcards.shots} "
        "method={wildcards.method} family={params.family} seed={wildcards.seed} > {log} 2>&1"
