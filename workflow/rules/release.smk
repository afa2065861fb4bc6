# Releases (docs/releases.md): the source DDPM, the source GAN of the baselines and the embedded metric backbone that
# the default configuration loads from releases/. config/release.yaml trains them here (source.kind: pretrain,
# gan.pretrained: null, evaluate.embedded_backbone: null) and these rules write them, with their manifests, under
# results/releases/ (with config/photos.yaml before it, the faces backbone trained on the held-out domain too);
# copying that over releases/ is a deliberate act, since every metric of the embedded world moves with them.


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


if GAN_ENABLED and not config["gan"].get("pretrained"):

    rule release_source_gan:
        input:
            model="models/{world}/source_gan",
            backbone="models/{world}/metric_backbone",
        output:
            directory("results/releases/{world}/{resolution}px/gan"),
        params:
            snapshots=gan_snapshot_dir,
            quality=json.dumps({k: v for k, v in config["gan"].get("quality", {}).items() if k != "snapshot_every"}),
            regenerate=json.dumps({"world": WORLD, "resolution": RESOLUTION, "data": config["data"],
                                   "gan": {k: config["gan"][k] for k in ("network", "pretrain", "quality") if k in config["gan"]}}),
            command=release_command,
            seed=config["data"]["seed"],
        threads: TRAINING_THREADS
        resources:
            mem_mb=4000,
            runtime=30,
        log:
            "logs/release_source_gan/{world}_{resolution}px.log",
        shell:
            "domainstudio release-gan --model {input.model} --backbone {input.backbone} --snapshots {params.snapshots} "
            "--world {wildcards.world} --resolution {wildcards.resolution} --data-seed {params.seed} "
            "--quality-json {params.quality:q} --params-json {params.regenerate:q} --command {params.command:q} "
            "--threads {threads} --out {output} > {log} 2>&1"


if not EMBEDDED_BACKBONE_RELEASE:
    # a world of one's own images (data.kind: folders) holds out no domain
    BACKBONE_RELEASE_NAME = (backbone_release_name(WORLD, config["evaluate"].get("backbone_train", {}).get("domains"))
                             if EMBEDDED else "metric_backbone")

    localrules:
        release_backbone,

    rule release_backbone:
        input:
            "models/{world}/metric_backbone",
        output:
            # metric_backbone, or metric_backbone_with_<held-out domains> when evaluate.backbone_train.domains names them
            directory(f"results/releases/{{world}}/{{resolution}}px/{BACKBONE_RELEASE_NAME}"),
        params:
            regenerate=json.dumps({"world": WORLD, "resolution": RESOLUTION, "data": config["data"],
                                   "backbone_train": config["evaluate"].get("backbone_train", {})}),
            command=release_command,
        log:
            "logs/release_backbone/{world}_{resolution}px.log",
        shell:
            "domainstudio release-backbone --backbone {input} --params-json {params.regenerate:q} "
            "--command {params.command:q} --out {output} > {log} 2>&1"
