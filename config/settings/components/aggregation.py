"""Settings of the aggregation context, read from the environment (see the README's table)."""
