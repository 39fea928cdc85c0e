"""Settings of the gateway context, read from the environment (see the README's table)."""
