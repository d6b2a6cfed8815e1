"""The name tests annotate the `emulator` fixture with.

The operator tests used to run against kmock's Kubernetes emulator; they now run
against a real kube-apiserver (tests/kube) and `emulator` yields a
`ClusterView` of it. The old name stays so tests that annotate with it keep working.
"""

from __future__ import annotations

from operator_harness import ClusterView

EmulatorThread = ClusterView

__all__ = ["EmulatorThread"]
