"""The live lab: a small cluster of host agents in network namespaces on this machine."""
