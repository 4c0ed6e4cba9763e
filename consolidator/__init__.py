"""Consolidator: energy-saving VM consolidation driven by postcopy live migration.

Layers (imports go one way only): domain <- models <- policies <- control <- {sim, agent, manager}
<- experiments <- cli. ``reports`` reads stored runs. See docs/architecture.md.
"""

__version__ = "0.1.0"
