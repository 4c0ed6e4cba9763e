"""Experiments: runs of scenarios under policies and migration methods, written as run folders."""
