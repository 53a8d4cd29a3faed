"""Recipes: pure functions from a dataset's tables to an :class:`annotation.spec.AnnotationSpec`."""
