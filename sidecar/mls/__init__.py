"""mls: see module docstrings."""
