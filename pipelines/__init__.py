"""The pipelines that build corpusforge's datasets, and their shared engine (``pipelines.core``)."""

from pipelines.core.workerenv import configure_this_process

# before anything imports polars: the allocator settings of a build worker (see workerenv)
configure_this_process()
