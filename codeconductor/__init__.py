"""CodeConductor: the import namespace of the distribution ``codeconductor``.

The engine is :mod:`codeconductor.ensemble` and the language server :mod:`codeconductor.server`; in a checkout they
are the folders ``ensemble/`` and ``server/`` (this folder links to them, the wheel maps them with setuptools'
``package-dir``). Nothing is imported here, so ``import codeconductor.ensemble`` never loads the server.
"""

__version__ = "0.1.0"  # the distribution's version (pyproject reads it from here); the editor extensions check it
