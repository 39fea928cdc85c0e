"""The framework-free core: entities, value objects, ports and use cases.

Nothing under `core` imports Django, DRF, a database or HTTP driver (import-linter checks it).
"""
