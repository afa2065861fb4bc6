# Releases (docs/releases.md): the source DDPM and the embedded metric backbone that the default configuration loads
# from releases/. config/release.yaml trains both here (source.kind: pretrain, evaluate.embedded_backbone: null) and
# these rules write them, with their manifests, under results/releases/; copying that over releases/ is a deliberate
# act, since every metric of the embedded world moves with them.


if config["source"]["kind"] == "pretrain":

    rule release_source:
        input:
            model="models/{world}/source",
            backbone="models/{world}/metric_backbone",
        output:
            directory("results/releases/{world}/{resolution}px/ddpm"),
        params:
            snapshots=source_snapshot_dir,
            quality=json.dumps({k: v for k, v in config["source"].get("quality", {}).items() if k != "snapshot_every"}),
            regenerate=json.dumps({"world": WORLD, "resolution": RESOLUTION, "data": config["data"], "source": config["source"]}),
            command=release_command,
            seed=config["data"]["seed"],
        threads: TRAINING_THREADS
        resources:
            mem_mb=8000,
            runtime=60,
        log:
            "logs/release_source/{world}_{resolution}px.log",
        shell:
            "domainstudio release-source --model {input.model} --backbone {input.backbone} --snapshots {params.snapshots} "
            "--world {wildcards.world} --resolution {wildcards.resolution} --data-seed {params.seed} "
            "--quality-json {params.quality:q} --params-json {params.regenerate:q} --command {params.command:q} "
            "--threads {threads} --out {output} > {log} 2>&1"


if not EMBEDDED_BACKBONE_RELEASE:

    localrules:
        release_backbone,

    rule release_backbone:
        input:
            "models/{world}/metric_backbone",
        output:
            directory("results/releases/{world}/{resolution}px/metric_backbone"),
        params:
            regenerate=json.dumps({"world": WORLD, "resolution": RESOLUTION, "data": config["data"],
                                   "backbone_train": config["evaluate"].get("backbone_train", {})}),
            command=release_command,
        log:
            "logs/release_backbone/{world}_{resolution}px.log",
        shell:
            "domainstudio release-backbone --backbone {input} --params-json {params.regenerate:q} "
            "--command {params.command:q} --out {output} > {log} 2>&1"
