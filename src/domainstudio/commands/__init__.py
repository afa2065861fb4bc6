"""The verbs of the ``domainstudio`` command, one module per workflow stage, each registering its verbs with
``add_verbs(verb)``. This is the layer above the stages: a verb wires stages together (reads images, loads or builds
a model, trains, scores, writes), and no stage package imports from here. Stage settings arrive as ``--config-json``
(:mod:`domainstudio.commands.stage_config`)."""
