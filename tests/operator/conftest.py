"""Registers the operator test fixtures (defined in operator_harness)."""

from __future__ import annotations

from operator_harness import emulator, kubectl, operator_factory

__all__ = ["emulator", "kubectl", "operator_factory"]
