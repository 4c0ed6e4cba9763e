"""Host agent: runs VMs with QEMU on one host, migrates them, reports stats, suspends the host."""
