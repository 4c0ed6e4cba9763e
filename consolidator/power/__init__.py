"""power layer."""
