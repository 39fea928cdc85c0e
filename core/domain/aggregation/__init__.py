"""The aggregation domain: composites, URL templates, answer shaping and run outcomes."""
