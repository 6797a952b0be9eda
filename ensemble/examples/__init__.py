"""The demo's bundled example (``codeconductor demo`` fixes ``average.py``); shipped, never imported."""
