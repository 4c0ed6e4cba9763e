"""Workload traces: PlanetLab day folders and generic CSV files, read (``load``) and fetched into a
checksummed cache (``fetch``). Below sim and literature, which both replay them; depends on domain only."""
