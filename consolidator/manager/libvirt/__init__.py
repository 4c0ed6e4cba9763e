"""The libvirt engine: the control loop's ClusterPort over hosts that libvirtd already manages."""
