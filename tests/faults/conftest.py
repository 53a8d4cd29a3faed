"""The annotation crash tests use the real local Label Studio and argilla-server of the annotation tests."""

from tests.annotation.conftest import argilla, label_studio, label_studio_server  # noqa: F401 (fixtures)
