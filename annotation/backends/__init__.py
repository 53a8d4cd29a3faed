"""Annotation backends: adapters that turn an annotation spec into calls to a real server."""
