# Evaluation: Intra-LPIPS (CDC's protocol) of each run's samples around its K training images.


rule intra_lpips:
    input:
        samples="samples/{world}/{domain}/{shots}shot/{method}/seed{seed}",
        train="data/{world}/{domain}/{shots}shot",
    output:
        "results/metrics/{world}/{domain}/{shots}shot/{method}/seed{seed}/intra_lpips.json",
    params:
        backbone=config["evaluate"]["backbone"],
        resize=config["evaluate"]["resize"],
        cap=config["evaluate"]["cluster_cap"],
        seed=config["evaluate"]["seed"],
        resolution=RESOLUTION,
        family=method_family,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/intra_lpips/{world}_{domain}_{shots}shot_{method}_seed{seed}.log",
    shell:
        "domainstudio intra-lpips --samples {input.samples} --train {input.train} --shots {wildcards.shots} "
        "--resolution {params.resolution} --backbone {params.backbone} --resize {params.resize} "
        "--cluster-cap {params.cap} --seed {params.seed} --threads {threads} --out {output} "
        "--meta world={wildcards.world} domain={wildcards.domain} shots={wildcards.shots} "
        "method={wildcards.method} family={params.family} seed={wildcards.seed} > {log} 2>&1"
