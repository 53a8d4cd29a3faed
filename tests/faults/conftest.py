"""The annotation crash tests use the real local Label Studio of the annotation tests."""

from tests.annotation.conftest import label_studio, label_studio_server  # noqa: F401 (fixtures)
