"""Use cases of the aggregation context and the ports they depend on."""
