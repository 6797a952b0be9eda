"""The ``codeconductor`` command: a front end of the engine (:mod:`codeconductor.ensemble`), beside the language
server (:mod:`codeconductor.server`). The engine imports neither front end; this package imports the server only
to run it (``codeconductor serve``).

* :mod:`codeconductor.cli.app` - the command line: ``models``, ``ask``, ``demo``, ``serve``, and :func:`main`.
* :mod:`codeconductor.cli.fix` - ``fix`` and ``gen-tests``.
* :mod:`codeconductor.cli.stats` - ``stats``, the history's table, dashboard, export and reset.

``python -m codeconductor.cli`` is the same as the ``codeconductor`` command.
"""

from __future__ import annotations

from ._common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NO_ANSWER, EXIT_OK, EXIT_USAGE
from .app import example_path, main

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_NO_ANSWER", "EXIT_OK", "EXIT_USAGE", "example_path", "main"]
