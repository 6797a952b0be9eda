"""CodeConductor: the import namespace of the distribution ``codeconductor``.

The engine is :mod:`codeconductor.ensemble`; its two front ends are the language server :mod:`codeconductor.server`
and the command line :mod:`codeconductor.cli`. In a checkout they are the folders ``ensemble/``, ``server/`` and
``cli/`` (this folder links to them, the wheel maps them with setuptools' ``package-dir``). Nothing is imported here,
so ``import codeconductor.ensemble`` never loads a front end.
"""

__version__ = "0.1.0"  # the distribution's version (pyproject reads it from here); the editor extensions check it
