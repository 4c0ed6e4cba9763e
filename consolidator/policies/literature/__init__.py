"""Consolidation policies of Beloglazov & Buyya as coded in CloudSim 3.0.3 (pure functions on arrays).

Overload detectors (THR, IQR, MAD, LR, LRR), VM selectors (MMT, MU, RS, MC), the SPECpower model and
the PABFD power-increase rule; names such as ``thr-mmt-0.8`` are parsed by :mod:`.registry`.
"""
