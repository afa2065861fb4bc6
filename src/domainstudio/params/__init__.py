"""params.yaml on the workflow's side: the checks a schema cannot express (``checks.py``) and what the rules pass
to the verbs (``arguments.py``). The method registry and shared constants are :mod:`domainstudio.registry`."""
