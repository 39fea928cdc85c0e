"""Composition root of the aggregation context: factories that build use cases from adapters.

Views, commands and admin actions get their use cases here; nothing else constructs adapters.
"""
