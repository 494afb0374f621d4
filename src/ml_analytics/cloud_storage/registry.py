"""Where providers are found, and who may claim a config section.

Four ways in, none of which needs an edit to ``cloud.py`` or any other existing file, loaded in
this order:

1. The built-ins, listed in :data:`BUILTINS` by module (they import their cloud SDK lazily, inside
   methods, so loading them imports no SDK).
2. Any other module dropped into the ``ml_analytics.cloud_storage`` package.
3. Modules in a drop-in folder: ``[COMMON] cloud_module_path`` (the deployment's ``cloud_storage/``
   folder, where the original told people to add a file) and the folders in
   ``$ML_ANALYTICS_PROVIDER_PATH``. Only files written against this project (their text mentions
   ``ml_analytics``) are imported; the original's modules and the compat shims are left alone.
4. Installed packages that declare an entry point in the group ``ml_analytics.cloud_providers``.

A section is claimed once. A second class declaring a taken section is refused and reported with
both origins; a built-in is replaced only by a class that says so (``replaces = "AWS"``), and that
replacement is announced on every run. Two non-built-ins claiming one section make it unusable
(an error naming both) rather than letting file names pick a winner.

A provider that fails to import, or a class lacking a required method, is recorded as broken with
its error; the others keep working, every run reports it, and a config section named like it fails
the run with that error instead of being silently dropped.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import pkgutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, UsageError, one_line

if TYPE_CHECKING:
    from .base import CloudProvider

ENTRY_POINT_GROUP = "ml_analytics.cloud_providers"
ENV_PROVIDER_PATH = "ML_ANALYTICS_PROVIDER_PATH"
# The built-in providers, by module: loaded first, so they own their sections.
BUILTINS = ("local", "s3", "aws", "oracle", "ms_azure", "gcp")
_NOT_PROVIDER_MODULES = {"base", "registry", "cloud", "s3_quirks"}
REQUIRED_METHODS = ("put_file", "stat", "list", "delete")
# A drop-in folder file is imported only when written against this project, and never when it is
# one of the compat shims (`ml-analytics compat install` marks them).
_DROPIN_MARK = "ml_analytics"
_COMPAT_MARK = "ml-analytics compat install"


class ProviderRegistry:
    def __init__(self) -> None:
        self._classes: dict[str, type[CloudProvider]] = {}
        self._origins: dict[str, str] = {}
        self._broken: dict[str, str] = {}
        self._conflicts: dict[str, str] = {}  # section -> why it cannot be used
        self._notices: dict[str, str] = {}  # section -> announcement of an opted-in replacement
        self._folders: set[str] = set()
        self._origin_now: str | None = None
        self._announced: set[str] = set()
        self._loaded = False
        self._loading = False

    # -- registration ---------------------------------------------------------------------------
    def register(self, cls: type["CloudProvider"], origin: str | None = None) -> type["CloudProvider"]:
        """Claim ``cls.section`` for ``cls``; a refused claim is recorded as broken, not raised."""
        from .base import CloudProvider

        name = cls.section.upper()
        origin = origin or self._origin_now or cls.__module__
        missing = [m for m in REQUIRED_METHODS if getattr(cls, m, None) is getattr(CloudProvider, m)]
        if missing:
            self._broken[f"[{name}] {cls.__qualname__} ({origin})"] = (
                f"{cls.__qualname__} does not implement {', '.join(missing)}")
            return cls
        existing = self._classes.get(name)
        if existing is None or existing is cls or _same_definition(existing, cls):
            self._classes[name] = cls
            self._origins[name] = origin if existing is not cls else self._origins.get(name, origin)
            return cls
        old_origin = self._origins.get(name, existing.__module__)
        replaces = (getattr(cls, "replaces", None) or "").upper()
        if _is_builtin(existing) and replaces == name:
            self._classes[name] = cls
            self._origins[name] = origin
            self._notices[name] = (f"provider [{name}] is the one from {origin}, which replaces the built-in "
                                   f"{existing.__module__}.{existing.__qualname__} (replaces = {name!r})")
            return cls
        both = f"{old_origin} ({existing.__qualname__}) and {origin} ({cls.__qualname__})"
        if _is_builtin(existing):
            self._broken[f"{cls.__qualname__} ({origin})"] = (
                f"declares section [{name}], which belongs to the built-in {old_origin}; refused (a plugin "
                f"replaces a built-in only with replaces = {name!r} on its class)")
        else:
            self._conflicts[name] = f"section [{name}] is declared by both {both}; remove one of them"
            self._broken[f"{cls.__qualname__} ({origin})"] = self._conflicts[name]
        return cls

    def unregister(self, section: str) -> None:
        for table in (self._classes, self._origins, self._conflicts, self._notices):
            table.pop(section.upper(), None)

    # -- loading ----------------------------------------------------------------------------------
    def load(self) -> None:
        """Import the built-ins, modules dropped into the package or $ML_ANALYTICS_PROVIDER_PATH,
        and installed plugins (once)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            package = importlib.import_module(__package__)
            for name in BUILTINS:
                self._import(f"{__package__}.{name}", label=name)
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
                if info.name in _NOT_PROVIDER_MODULES or info.name in BUILTINS or info.name.startswith("_"):
                    continue
                self._import(f"{__package__}.{info.name}", label=info.name)
            for folder in os.environ.get(ENV_PROVIDER_PATH, "").split(os.pathsep):
                if folder.strip():
                    self.load_folder(folder.strip(), source=f"${ENV_PROVIDER_PATH}")
            self._load_entry_points()
            self._loaded = True
        finally:
            self._loading = False

    def load_folder(self, folder: str | os.PathLike, *, source: str = "") -> None:
        """Import the provider modules of a drop-in folder (once per folder)."""
        self.load()
        path = Path(folder).expanduser()
        key = str(path.resolve()) if path.exists() else str(path)
        if key in self._folders:
            return
        self._folders.add(key)
        if not path.is_dir():
            what = f" (from {source})" if source else ""
            self._broken[f"folder {path}"] = f"provider folder {path}{what} does not exist"
            return
        for file in sorted(path.glob("*.py")):
            if file.name.startswith("_"):
                continue
            try:
                text = file.read_text(encoding="utf-8", errors="replace")
            except OSError as e:
                self._broken[file.stem] = f"{file}: {e.strerror}"
                continue
            if _DROPIN_MARK not in text or _COMPAT_MARK in text:
                continue  # the original's modules, the compat shims, unrelated helpers
            unique = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:8]
            module_name = f"ml_analytics_dropin_{unique}_{file.stem}"
            try:
                spec = importlib.util.spec_from_file_location(module_name, file)
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                with self._origin(str(file)):
                    spec.loader.exec_module(module)
            except Exception as e:
                sys.modules.pop(module_name, None)
                self._broken[file.stem] = f"{file}: {type(e).__name__}: {one_line(e)}"

    @contextmanager
    def _origin(self, origin: str):
        before, self._origin_now = self._origin_now, origin
        try:
            yield
        finally:
            self._origin_now = before

    def _import(self, module: str, label: str) -> None:
        try:
            importlib.import_module(module)
        except Exception as e:  # a broken provider must not break the others
            self._broken[label] = f"{type(e).__name__}: {one_line(e)}"

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        from .base import CloudProvider

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            origin = f"plugin {ep.value}"
            try:
                with self._origin(origin):
                    obj = ep.load()
            except Exception as e:
                self._broken[f"{ep.name} (plugin {ep.value})"] = f"{type(e).__name__}: {one_line(e)}"
                continue
            if isinstance(obj, type) and issubclass(obj, CloudProvider) and obj.section:
                self.register(obj, origin=origin)

    # -- queries ------------------------------------------------------------------------------
    def is_provider(self, section: str) -> bool:
        self.load()
        return section.upper() in self._classes or section.upper() in self._conflicts

    def get(self, section: str) -> type["CloudProvider"]:
        self.load()
        name = section.upper()
        if name in self._conflicts:
            raise ConfigError(self._conflicts[name])
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            hint = ""
            for label, error in self._broken.items():
                if section.lower() in label.lower():
                    hint = f" (provider module '{label}' failed to import: {error})"
            raise UsageError(f"unknown provider section [{section}]; known providers: {known}{hint}") from None

    def broken_for(self, section: str) -> str | None:
        """The load error of a broken provider whose module or entry point is named like ``section``."""
        self.load()
        low = section.lower()
        for label, error in self._broken.items():
            names = {label.split(" ", 1)[0].lower(), Path(label.split(" ", 1)[0]).stem.lower()}
            if low in names or label.lower().startswith((f"{low} (plugin ", f"[{low}] ")):
                return f"{label}: {error}"
        return None

    def sections(self) -> list[str]:
        self.load()
        return sorted(self._classes)

    def origin(self, section: str) -> str:
        return self._origins.get(section.upper(), "")

    def broken(self) -> dict[str, str]:
        self.load()
        return dict(self._broken)

    def notices(self) -> list[str]:
        """Announcements every run makes: built-ins replaced by an opted-in plugin."""
        self.load()
        return list(self._notices.values())

    def unannounced(self) -> list[str]:
        """Warnings about providers (broken ones, replaced built-ins) not yet shown in this process."""
        lines = self.notices() + [f"broken provider {label}: {error}" for label, error in self.broken().items()]
        fresh = [line for line in lines if line not in self._announced]
        self._announced.update(fresh)
        return fresh

    def prepare(self, config) -> None:
        """Get providers ready for ``config``: load the drop-in folder ``[COMMON] cloud_module_path``
        names (relative to the config file's folder), and refuse a section whose provider is broken."""
        from ..config import COMMON_SECTION, EMBEDDED_NAME

        folder = config.get(COMMON_SECTION, "cloud_module_path")
        if folder:
            path = Path(folder).expanduser()
            if not path.is_absolute() and config.path != EMBEDDED_NAME:
                path = Path(config.path).resolve().parent / path
            self.load_folder(path, source=f"[{COMMON_SECTION}] cloud_module_path")
        self.load()
        for section in config.sections():
            if section.upper() in self._classes:
                continue
            error = self.broken_for(section)
            if error:
                raise ConfigError(f"its provider failed to load: {error}", path=config.path, section=section)

    def secret_keys(self) -> dict[str, set[str]]:
        self.load()
        return {name: cls.secret_keys() for name, cls in self._classes.items()}


def _is_builtin(cls: type) -> bool:
    return cls.__module__ in {f"{__package__}.{name}" for name in BUILTINS}


def _same_definition(a: type, b: type) -> bool:
    """The same class defined again (a module re-imported, a test redefining it): not a rival."""
    return a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__


registry = ProviderRegistry()


def get_provider_class(section: str) -> type["CloudProvider"]:
    return registry.get(section)
