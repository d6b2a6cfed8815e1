"""Import only the parts of py-libp2p and pyroute2 that a node uses.

Both libraries' package `__init__` modules import nearly everything the package holds.
A node process pays for all of it in memory (docs/operations.md, "Memory"): py-libp2p
brings AutoTLS (its ACME and broker clients import requests and httpx), mDNS (zeroconf),
UPnP and circuit relay v2 (which imports Kademlia, bitswap and IPNS records), none of
which a node enables; pyroute2's `__init__` imports every netlink family it has (NDB,
IPDB, WireGuard, nftables, ...) where a node uses IPRoute alone.

`install()` puts a finder first on `sys.meta_path` that changes how a fixed list of
modules is loaded, never what they do once used:

- DEFERRED modules become placeholders: each name imported from one is a stand-in that
  loads the real module the first time it is called, instantiated or looked into (so
  `from libp2p.discovery.mdns.mdns import MDNSDiscovery` costs nothing until a host
  enables mDNS, which a node's never does).
- PACKAGES are created without running their `__init__`; their submodules import as
  usual when named. A name the package's `__init__` would have defined is resolved on
  first access: through SHORTCUTS (pyroute2's `IPRoute` from `pyroute2.iproute`), or by
  running the real `__init__` then, so code that uses more of the package still works.

`peertap run` installs it before it imports the node (cli.py); set PEERTAP_LEAN_IMPORTS=0
to load both libraries whole. Tests and other commands import them as they are.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Sequence
from typing import Any

ENV = "PEERTAP_LEAN_IMPORTS"

DEFERRED = frozenset(
    {
        "libp2p.security.tls.autotls.acme",
        "libp2p.security.tls.autotls.broker",
        "libp2p.discovery.mdns.mdns",
        "libp2p.discovery.upnp.upnp",
    }
)
"""Imported by libp2p's BasicHost at module level, used only with AutoTLS, mDNS or UPnP."""

PACKAGES = frozenset(
    {"libp2p.relay", "libp2p.relay.circuit_v2", "libp2p.discovery.mdns", "pyroute2"}
)
"""Packages whose `__init__` runs only if a name it defines is used (BasicHost imports
`libp2p.relay.circuit_v2.nat` alone; a node uses pyroute2's IPRoute alone)."""

SHORTCUTS = {"pyroute2": {"IPRoute": "pyroute2.iproute"}}
"""Names of a lean package served from the submodule that defines them."""


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def install() -> None:
    """Load the modules above lean from now on (once; a no-op if already installed)."""
    if not any(isinstance(f, _LeanFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LeanFinder())


def _real_spec(name: str) -> importlib.machinery.ModuleSpec:
    parent, _, _ = name.rpartition(".")
    path = sys.modules[parent].__path__ if parent else None
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    return spec


class _Deferred:
    """A name of a deferred module: the real object, loaded on first use."""

    __slots__ = ("_module", "_name")

    def __init__(self, module: _DeferredModule, name: str) -> None:
        self._module = module
        self._name = name

    def _target(self) -> Any:
        return getattr(self._module.load(), self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __repr__(self) -> str:
        return f"<deferred {self._module.__name__}.{self._name}>"


class _DeferredModule(types.ModuleType):
    _real: types.ModuleType | None = None

    def load(self) -> types.ModuleType:
        """The real module: imported now (in its own module object) unless it was."""
        if self._real is None:
            spec = _real_spec(self.__name__)
            real = importlib.util.module_from_spec(spec)
            assert spec.loader is not None
            sys.modules[self.__name__] = real
            try:
                spec.loader.exec_module(real)
            except BaseException:
                sys.modules[self.__name__] = self
                raise
            self._real = real
        return self._real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Deferred(self, name)


class _LeanPackage(types.ModuleType):
    _initialised = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        shortcut = SHORTCUTS.get(self.__name__, {}).get(name)
        if shortcut is not None:
            value = getattr(importlib.import_module(shortcut), name)
            setattr(self, name, value)
            return value
        submodule = f"{self.__name__}.{name}"
        if importlib.machinery.PathFinder.find_spec(submodule, self.__path__) is not None:
            # `from package import submodule` asks for the attribute before it imports.
            return importlib.import_module(submodule)
        if not self._initialised:
            # A name only the real __init__ defines: run it now, in this module object.
            self._initialised = True
            spec = _real_spec(self.__name__)
            assert spec.loader is not None
            spec.loader.exec_module(self)
            if name in self.__dict__:
                return self.__dict__[name]
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


class _LeanLoader(importlib.abc.Loader):
    def __init__(self, module_type: type[types.ModuleType]) -> None:
        self.module_type = module_type

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = self.module_type(spec.name)
        if spec.submodule_search_locations is not None:
            module.__path__ = list(spec.submodule_search_locations)
        if spec.origin is not None:
            module.__file__ = spec.origin
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing runs now: names are resolved on first access (see the classes)."""


class _LeanFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in DEFERRED:
            return importlib.machinery.ModuleSpec(fullname, _LeanLoader(_DeferredModule))
        if fullname in PACKAGES:
            real = importlib.machinery.PathFinder.find_spec(fullname, path)
            if real is None or real.submodule_search_locations is None:
                return None
            spec = importlib.machinery.ModuleSpec(
                fullname, _LeanLoader(_LeanPackage), origin=real.origin, is_package=True
            )
            spec.submodule_search_locations = list(real.submodule_search_locations)
            return spec
        return None
