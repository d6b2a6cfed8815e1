"""trunk: see module docstrings."""
