"""Ports every context's use cases may depend on."""
