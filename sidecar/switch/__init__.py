"""switch: see module docstrings."""
