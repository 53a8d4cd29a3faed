"""One module per bundled experiment; each defines ``NAME``, ``SUMMARY`` and ``command`` (a typer
command function), registered by :mod:`corpusforge.cli.experiment`. Heavy imports stay inside the
command functions, so listing the experiments is fast."""
