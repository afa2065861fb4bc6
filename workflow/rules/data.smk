# Data: the embedded benchmark is rendered here; with data.kind "folders" the images are yours
# (data/<world>/source/, data/<world>/<domain>/<K>shot/, data/<world>/<domain>/reference/).

if config["data"]["kind"] == "embedded":

    rule render_source:
        output:
            directory("data/{world}/source"),
        params:
            images=config["data"]["source_images"],
            seed=config["data"]["seed"],
            resolution=RESOLUTION,
        log:
            "logs/render_source/{world}.log",
        benchmark:
            "logs/benchmarks/render_source/{world}.tsv",
        shell:
            "domainstudio render-source --world {wildcards.world} --out {output} --count {params.images} "
            "--resolution {params.resolution} --seed {params.seed} > {log} 2>&1"

    rule render_target:
        output:
            *[directory(f"data/{{world}}/{{domain}}/{k}shot") for k in config["data"]["shot_sets"]],
            reference=directory("data/{world}/{domain}/reference"),
        params:
            out="data/{world}/{domain}",
            shot_sets=" ".join(str(k) for k in config["data"]["shot_sets"]),
            reference=config["data"]["reference_images"],
            seed=config["data"]["seed"],
            resolution=RESOLUTION,
        log:
            "logs/render_target/{world}_{domain}.log",
        benchmark:
            "logs/benchmarks/render_target/{world}_{domain}.tsv",
        shell:
            "domainstudio render-target --world {wildcards.world} --domain {wildcards.domain} --out {params.out} "
            "--shot-sets {params.shot_sets} --reference {params.reference} --resolution {params.resolution} "
            "--seed {params.seed} > {log} 2>&1"

    localrules:
        world_figure,  # seconds of work: not worth a cluster job

    rule world_figure:
        output:
            report("results/figures/{world}_domains.png", caption="../report/domains.rst", category="Figures",
                   labels={"figure": "domains"}),
        params:
            seed=config["data"]["seed"],
            resolution=RESOLUTION,
        log:
            "logs/world_figure/{world}.log",
        benchmark:
            "logs/benchmarks/world_figure/{world}.tsv",
        shell:
            "domainstudio world-figure --world {wildcards.world} --out {output} --resolution {params.resolution} "
            "--seed {params.seed} > {log} 2>&1"
