"""Where providers are found.

Three ways in, none of which needs an edit to ``cloud.py`` or any other existing file:

1. A module in the ``ml_analytics.cloud_storage`` package: every module there is imported once,
   when providers are first needed. Built-in modules import their cloud SDK lazily, inside
   methods, so this does not import any SDK.
2. A separately installed package that declares an entry point in the group
   ``ml_analytics.cloud_providers`` (the value is a provider class or a module defining one).
3. Any class that subclasses :class:`CloudProvider` and sets ``section`` registers itself when
   its module is imported (useful in tests and notebooks).

A provider module or plugin that fails to import is recorded by name with its error and the
others keep working.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from ..errors import UsageError, one_line

if TYPE_CHECKING:
    from .base import CloudProvider

ENTRY_POINT_GROUP = "ml_analytics.cloud_providers"
_NOT_PROVIDER_MODULES = {"base", "registry", "cloud", "s3_quirks"}


class ProviderRegistry:
    def __init__(self) -> None:
        self._classes: dict[str, type[CloudProvider]] = {}
        self._origins: dict[str, str] = {}
        self._broken: dict[str, str] = {}
        self._loaded = False
        self._loading = False

    def register(self, cls: type["CloudProvider"], origin: str | None = None) -> type["CloudProvider"]:
        name = cls.section.upper()
        self._classes[name] = cls
        self._origins[name] = origin or cls.__module__
        return cls

    def unregister(self, section: str) -> None:
        self._classes.pop(section.upper(), None)
        self._origins.pop(section.upper(), None)

    def load(self) -> None:
        """Import built-in provider modules and installed plugins (once)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            package = importlib.import_module(__package__)
            for info in pkgutil.iter_modules(package.__path__):
                if info.name in _NOT_PROVIDER_MODULES or info.name.startswith("_"):
                    continue
                self._import(f"{__package__}.{info.name}", label=info.name)
            self._load_entry_points()
            self._loaded = True
        finally:
            self._loading = False

    def _import(self, module: str, label: str) -> None:
        try:
            importlib.import_module(module)
        except Exception as e:  # a broken provider must not break the others
            self._broken[label] = f"{type(e).__name__}: {one_line(e)}"

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
            except Exception as e:
                self._broken[f"{ep.name} (plugin {ep.value})"] = f"{type(e).__name__}: {one_line(e)}"
                continue
            from .base import CloudProvider

            if isinstance(obj, type) and issubclass(obj, CloudProvider) and obj.section:
                self.register(obj, origin=f"plugin {ep.value}")
            else:
                for name, cls in list(self._classes.items()):
                    if cls.__module__ == getattr(obj, "__name__", None):
                        self._origins[name] = f"plugin {ep.value}"

    # -- queries ------------------------------------------------------------------------------
    def is_provider(self, section: str) -> bool:
        self.load()
        return section.upper() in self._classes

    def get(self, section: str) -> type["CloudProvider"]:
        self.load()
        try:
            return self._classes[section.upper()]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            hint = ""
            for label, error in self._broken.items():
                if section.lower() in label.lower():
                    hint = f" (provider module '{label}' failed to import: {error})"
            raise UsageError(f"unknown provider section [{section}]; known providers: {known}{hint}") from None

    def sections(self) -> list[str]:
        self.load()
        return sorted(self._classes)

    def origin(self, section: str) -> str:
        return self._origins.get(section.upper(), "")

    def broken(self) -> dict[str, str]:
        self.load()
        return dict(self._broken)

    def secret_keys(self) -> dict[str, set[str]]:
        self.load()
        return {name: cls.secret_keys() for name, cls in self._classes.items()}


registry = ProviderRegistry()


def get_provider_class(section: str) -> type["CloudProvider"]:
    return registry.get(section)
