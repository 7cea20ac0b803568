"""Reports across rounds and experiments: gathering experiments (``experiments``), their
statistics (``comparison``), figures (``figures``), tables and HTML pages (``pages``), and the
report commands (``report``). Read-only over the pipeline's artifacts and DVC's experiments."""
