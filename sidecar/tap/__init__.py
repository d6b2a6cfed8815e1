"""tap: see module docstrings."""
