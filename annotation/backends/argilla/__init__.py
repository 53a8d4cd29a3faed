"""Argilla 2.8.0 backend: a local argilla-server (``server``) in its own pinned environment.

``search_engine`` and ``launcher`` run inside that environment, not in corpusforge's.
"""
