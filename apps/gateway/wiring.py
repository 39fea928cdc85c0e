"""Composition root of the gateway context: factories that build use cases from adapters.

Views, commands and admin actions get their use cases here; nothing else constructs adapters.
"""
