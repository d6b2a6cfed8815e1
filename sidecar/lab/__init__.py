"""lab: see module docstrings."""
