"""literature layer."""
