"""crypto: see module docstrings."""
