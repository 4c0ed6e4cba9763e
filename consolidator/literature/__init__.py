"""Literature mode: PlanetLab traces under CloudSim 3.0.3's model (and a realistic variant), fast.

numba's set-up (on-disk cache keyed by the sources, lean start) is done once in
``consolidator.policies.literature._compile``, which every compiled module imports.
"""
