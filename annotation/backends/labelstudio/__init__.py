"""Label Studio backend: a local server (``server``) managed in its own pinned environment."""
