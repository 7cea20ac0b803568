"""al_core: the pure library under the pipeline.

Arrays in, arrays out; nothing here knows about DVC or ``params.yaml``. Import the samplers in
your own loop with ``from al_core.samplers import select``.
"""

__version__ = "0.1.0"
