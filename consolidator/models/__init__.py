"""Pure models: migration (precopy, postcopy, hybrid), host power, workloads. No I/O, no clocks."""
