"""Which class serves a config section: a table for the built-ins, names for the plugins.

Built-ins are listed in :data:`BUILTINS`, section to class path, and imported when a section needs
them (their modules import their cloud SDK lazily, inside methods, so importing one imports no SDK).
Plugins come three ways and are kept as names until needed:

1. **Entry points** in the group ``ml_analytics.cloud_providers`` (an installed package). An entry
   point is named after the section it serves (``presigned = pkg:Presigned`` serves ``[PRESIGNED]``)
   and is imported when that section is configured or asked for; one named otherwise is imported
   when a configured section is claimed by nothing else, and by ``ml-analytics providers``.
2. **Drop-in folders** the operator names: ``[COMMON] cloud_module_path`` (the deployment's
   ``cloud_storage/`` folder, where the original told people to add a file) and the folders in
   ``$ML_ANALYTICS_PROVIDER_PATH``. Their files written against this project (the text mentions
   ``ml_analytics``; never the original's modules or the compat shims) are imported when the config
   naming the folder is loaded, so a refused or broken one is reported on every run.
3. **A module dropped into this package's folder** (the seed's procedure, on an installed copy):
   looked for only when a configured section is claimed by nothing else, or to list every provider.

A module's provider classes are the :class:`~.base.CloudProvider` subclasses it defines with a
``section``; defining a class registers nothing. A section is claimed once: a second class declaring a
taken section is refused and reported with both origins; a built-in (known by the table, not by the
name a class reports) is replaced only by a class that says so (``replaces = "AWS"``), announced on
every run; two plugins claiming one section make it unusable rather than letting file names pick a
winner. A plugin that fails to import, or a class lacking a core method or a method of a capability it
declares, is recorded as broken with its error; a configured section that nothing claims while a
plugin is broken fails with both named. Tests register providers through :meth:`ProviderRegistry.register`
in fixtures and :meth:`ProviderRegistry.unregister` afterwards.

Thread-safe: one lock guards loading and registration.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, UsageError, one_line
from .capabilities import missing_members

if TYPE_CHECKING:
    from .base import CloudProvider

ENTRY_POINT_GROUP = "ml_analytics.cloud_providers"
ENV_PROVIDER_PATH = "ML_ANALYTICS_PROVIDER_PATH"

# The built-in providers: section -> "module:Class". Adding a built-in cloud is one line here.
BUILTINS: dict[str, str] = {
    "LOCAL": "ml_analytics.cloud_storage.local:Local",
    "S3": "ml_analytics.cloud_storage.s3:S3",
    "AWS": "ml_analytics.cloud_storage.aws:AWS",
    "ORACLE": "ml_analytics.cloud_storage.oracle:Oracle",
    "AZURE": "ml_analytics.cloud_storage.ms_azure:MSAzure",
    "GCP": "ml_analytics.cloud_storage.gcp:GCP",
    "ML_CORE": "ml_analytics.cloud_storage.ml_core:MLCore",
}
REQUIRED_METHODS = ("put_file", "stat", "list", "delete")
# Core operations a store may declare it cannot do at all (``cannot``), with the reason.
DECLINABLE = ("list", "delete")
# This package's own modules: never taken for a dropped-in provider module.
PACKAGE_MODULES = {"__init__", "base", "capabilities", "registry", "cloud", "local", "s3", "s3_sweep", "aws",
                   "oracle", "ms_azure", "azure_rest", "azure_blocks", "gcp", "ml_core"}
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
        self._builtin_classes: dict[str, type] = {}
        self._folders: set[str] = set()
        self._entry_points: dict[str, object] | None = None  # name (upper) -> entry point, not yet imported
        self._loaded_entry_points: set[str] = set()
        self._package_scanned = False
        self._announced: set[str] = set()
        self._lock = threading.RLock()

    # -- registration ---------------------------------------------------------------------------
    def register(self, cls: type["CloudProvider"], origin: str | None = None) -> type["CloudProvider"]:
        """Claim ``cls.section`` for ``cls``; a refused claim is recorded as broken, not raised."""
        with self._lock:
            return self._register(cls, origin or f"{cls.__module__}")

    def _register(self, cls, origin: str):
        name = cls.section.upper()
        why = contract_problems(cls)
        if why:
            self._broken[f"[{name}] {cls.__qualname__} ({origin})"] = f"{cls.__qualname__} {'; '.join(why)}"
            return cls
        existing = self._classes.get(name)
        if existing is None and name in BUILTINS and not self._is_builtin(cls):
            existing = self._builtin(name)  # the table's class owns its section, imported or not
        if existing is None or existing is cls or (_same_definition(existing, cls) and not self._is_builtin(existing)):
            self._classes[name] = cls
            self._origins[name] = origin if existing is not cls else self._origins.get(name, origin)
            return cls
        old_origin = self._origins.get(name, existing.__module__)
        replaces = (getattr(cls, "replaces", None) or "").upper()
        if self._is_builtin(existing) and replaces == name:
            self._classes[name] = cls
            self._origins[name] = origin
            self._notices[name] = (f"provider [{name}] is the one from {origin}, which replaces the built-in "
                                   f"{existing.__module__}.{existing.__qualname__} (replaces = {name!r})")
            return cls
        both = f"{old_origin} ({existing.__qualname__}) and {origin} ({cls.__qualname__})"
        if self._is_builtin(existing):
            self._broken[f"{cls.__qualname__} ({origin})"] = (
                f"declares section [{name}], which belongs to the built-in {existing.__module__}; refused (a "
                f"plugin replaces a built-in only with replaces = {name!r} on its class)")
        else:
            self._conflicts[name] = f"section [{name}] is declared by both {both}; remove one of them"
            self._broken[f"{cls.__qualname__} ({origin})"] = self._conflicts[name]
        return cls

    def unregister(self, section: str) -> None:
        with self._lock:
            for table in (self._classes, self._origins, self._conflicts, self._notices):
                table.pop(section.upper(), None)

    # -- the built-in table ---------------------------------------------------------------------
    def _builtin(self, name: str) -> type | None:
        """The built-in class for section ``name`` (imported now), None if there is none or it failed."""
        path = BUILTINS.get(name)
        if path is None:
            return None
        cls = self._builtin_classes.get(name)
        if cls is None:
            module, _, attr = path.partition(":")
            try:
                cls = getattr(importlib.import_module(module), attr)
            except Exception as e:  # a broken built-in must not break the others
                self._broken[module.rsplit(".", 1)[-1]] = f"{type(e).__name__}: {one_line(e)}"
                return None
            why = cannot_problems(cls)  # (its capabilities are the tests' business: some members are set per instance)
            if why:
                self._broken[module.rsplit(".", 1)[-1]] = f"{cls.__qualname__} {'; '.join(why)}"
                return None
            self._builtin_classes[name] = cls
        return cls

    def _is_builtin(self, cls: type) -> bool:
        name = getattr(cls, "section", "").upper()
        return name in BUILTINS and self._builtin(name) is cls

    def _resolve_builtin(self, name: str) -> None:
        if name in BUILTINS and name not in self._classes and name not in self._conflicts:
            cls = self._builtin(name)
            if cls is not None:
                self._classes[name] = cls
                self._origins[name] = cls.__module__

    # -- plugins ----------------------------------------------------------------------------------
    def _entry_point_table(self) -> dict[str, object]:
        if self._entry_points is None:
            from importlib.metadata import entry_points

            self._entry_points = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                self._entry_points.setdefault(ep.name.upper(), ep)
        return self._entry_points

    def _load_entry_point(self, name: str) -> None:
        ep = self._entry_point_table().get(name)
        if ep is None or name in self._loaded_entry_points:
            return
        self._loaded_entry_points.add(name)
        origin = f"plugin {ep.value}"
        try:
            obj = ep.load()
        except Exception as e:
            self._broken[f"{ep.name} (plugin {ep.value})"] = f"{type(e).__name__}: {one_line(e)}"
            return
        for cls in _provider_classes(obj):
            self._register(cls, origin)

    def _load_all_entry_points(self) -> None:
        for name in list(self._entry_point_table()):
            self._load_entry_point(name)

    def load_folder(self, folder: str | os.PathLike, *, source: str = "", allow_writable: bool = False) -> None:
        """Import the provider modules of a drop-in folder (once per folder). A folder or file that users
        other than its owner may write is refused (anyone could run code as this job), as ssh refuses
        such key files, unless ``allow_writable`` ([COMMON] allow_writable_module_path = true)."""
        with self._lock:
            path = Path(folder).expanduser()
            key = str(path.resolve()) if path.exists() else str(path)
            if key in self._folders:
                return
            self._folders.add(key)
            what = f" (from {source})" if source else ""
            if not path.is_dir():
                self._broken[f"folder {path}"] = f"provider folder {path}{what} does not exist"
                return
            unsafe = None if allow_writable else _writable_by_others(path)
            if unsafe:
                self._broken[f"folder {path}"] = (f"provider folder {path}{what} not loaded: {unsafe}; chmod go-w it, "
                                                  f"or set [COMMON] allow_writable_module_path = true")
                return
            for file in sorted(path.glob("*.py")):
                if file.name.startswith("_"):
                    continue
                unsafe = None if allow_writable else _writable_by_others(file)
                if unsafe:
                    self._broken[file.stem] = f"{file} not loaded: {unsafe}; chmod go-w it"
                    continue
                self._load_file(file)

    def _load_file(self, file: Path, module_name: str | None = None) -> None:
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            self._broken[file.stem] = f"{file}: {e.strerror}"
            return
        in_package = module_name is not None
        if not in_package and (_DROPIN_MARK not in text or _COMPAT_MARK in text):
            return  # the original's modules, the compat shims, unrelated helpers
        if module_name is None:
            unique = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:8]
            module_name = f"ml_analytics_dropin_{unique}_{file.stem}"
        origin = str(file) if not module_name.startswith(__package__) else module_name
        try:
            if module_name.startswith(__package__ + "."):
                module = importlib.import_module(module_name)
            else:
                spec = importlib.util.spec_from_file_location(module_name, file)
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(module_name, None)
            where = "" if in_package else f"{file}: "
            self._broken[file.stem] = f"{where}{type(e).__name__}: {one_line(e)}"
            return
        for cls in _provider_classes(module):
            self._register(cls, origin)

    def _scan_package(self) -> None:
        """Modules dropped into this package's folder (the seed's procedure): only when asked for."""
        if self._package_scanned:
            return
        self._package_scanned = True
        for file in sorted(Path(__file__).parent.glob("*.py")):
            if file.stem not in PACKAGE_MODULES and not file.name.startswith("_"):
                self._load_file(file, f"{__package__}.{file.stem}")

    def _env_folders(self, allow_writable: bool = False) -> None:
        for folder in os.environ.get(ENV_PROVIDER_PATH, "").split(os.pathsep):
            if folder.strip():
                self.load_folder(folder.strip(), source=f"${ENV_PROVIDER_PATH}", allow_writable=allow_writable)

    def _find(self, name: str) -> None:
        """Make sure everything that could claim section ``name`` has been looked at."""
        self._env_folders()
        self._resolve_builtin(name)
        if name in self._classes or name in self._conflicts:
            if name not in BUILTINS:
                return
            self._load_entry_point(name)  # a plugin named after a built-in may replace it
            return
        self._load_entry_point(name)
        if name in self._classes or name in self._conflicts:
            return
        self._load_all_entry_points()
        if name not in self._classes and name not in self._conflicts:
            self._scan_package()

    def load(self) -> None:
        """Look at every provider there is: the table, drop-in folders, entry points, the package folder
        (for listing them all; a run only imports what its config needs)."""
        with self._lock:
            self._env_folders()
            for name in BUILTINS:
                self._resolve_builtin(name)
            self._load_all_entry_points()
            self._scan_package()

    # -- queries ------------------------------------------------------------------------------
    def is_provider(self, section: str) -> bool:
        from ..config import NOT_PROVIDER_SECTIONS

        name = section.upper()
        with self._lock:
            if name in BUILTINS or name in self._classes or name in self._conflicts:
                return True
            if name in NOT_PROVIDER_SECTIONS:
                return False
            self._find(name)
            return name in self._classes or name in self._conflicts

    def get(self, section: str) -> type["CloudProvider"]:
        name = section.upper()
        with self._lock:
            self._find(name)
            if name in self._conflicts:
                raise ConfigError(self._conflicts[name])
            found = self._classes.get(name)
            if found is not None:
                return found
            known = ", ".join(self.known_names()) or "none"
            hint = ""
            error = self.broken_for(section)
            if error:
                hint = f" (provider {error})"
            elif self._broken:
                label, why = next(iter(self._broken.items()))
                hint = f" (a provider failed to load, it may be the one: {label}: {why})"
            raise UsageError(f"unknown provider section [{section}]; known providers: {known}{hint}") from None

    def broken_for(self, section: str) -> str | None:
        """The load error of a broken provider whose module or entry point is named like ``section``."""
        low = section.lower()
        with self._lock:
            for label, error in self._broken.items():
                names = {label.split(" ", 1)[0].lower(), Path(label.split(" ", 1)[0]).stem.lower()}
                if low in names or label.lower().startswith((f"{low} (plugin ", f"[{low}] ")):
                    return f"{label}: {error}"
        return None

    def known_names(self) -> list[str]:
        """Sections known without importing anything new: built-ins, registered classes, entry-point names."""
        with self._lock:
            return sorted(set(BUILTINS) | set(self._classes) | set(self._entry_point_table()))

    def sections(self) -> list[str]:
        """Every provider section there is (imports every plugin: for listing them)."""
        self.load()
        with self._lock:
            return sorted(self._classes)

    def origin(self, section: str) -> str:
        return self._origins.get(section.upper(), "")

    def broken(self) -> dict[str, str]:
        """Every provider that failed to load or was refused (looks at every plugin there is)."""
        self.load()
        with self._lock:
            return dict(self._broken)

    def notices(self) -> list[str]:
        """Announcements every run makes: built-ins replaced by an opted-in plugin."""
        with self._lock:
            return list(self._notices.values())

    def unannounced(self) -> list[str]:
        """Warnings about providers (broken ones, replaced built-ins) not yet shown in this process."""
        with self._lock:
            lines = self.notices() + [f"broken provider {label}: {error}" for label, error in self._broken.items()]
            fresh = [line for line in lines if line not in self._announced]
            self._announced.update(fresh)
        return fresh

    def prepare(self, config) -> None:
        """Get providers ready for ``config``: load the drop-in folders it names (``[COMMON]
        cloud_module_path``, relative to the config file's folder, and ``$ML_ANALYTICS_PROVIDER_PATH``),
        resolve every section it has, and refuse a section whose provider is broken, or that nothing
        claims while some plugin failed to load (that plugin may be the one that serves it)."""
        from ..config import COMMON_SECTION, EMBEDDED_NAME, NOT_PROVIDER_SECTIONS

        with self._lock:
            allow = (config.get(COMMON_SECTION, "allow_writable_module_path") or "").lower() in ("1", "true", "yes",
                                                                                                "on")
            folder = config.get(COMMON_SECTION, "cloud_module_path")
            if folder:
                path = Path(folder).expanduser()
                if not path.is_absolute() and config.path != EMBEDDED_NAME:
                    path = Path(config.path).resolve().parent / path
                self.load_folder(path, source=f"[{COMMON_SECTION}] cloud_module_path", allow_writable=allow)
            self._env_folders(allow_writable=allow)
            for section in config.sections():
                name = section.upper()
                if name in NOT_PROVIDER_SECTIONS:
                    continue
                self._find(name)
                if name in self._classes or name in self._conflicts or config.is_blank(section):
                    continue
                error = self.broken_for(section)
                if error:
                    raise ConfigError(f"its provider failed to load: {error}", path=config.path, section=section)
                if self._broken:
                    labels = "; ".join(f"{label}: {why}" for label, why in self._broken.items())
                    raise ConfigError(f"no provider claims this section, and a provider failed to load (it may be "
                                      f"the one that serves it): {labels}", path=config.path, section=section)

    def implied(self, config) -> list[str]:
        """Provider sections a config configures without naming them: the built-ins (and providers already
        registered) whose option fallbacks read the deployment's own sections, such as [ML_CORE] from release
        6.0's [ML_CORE_SERVICE_URL], [API_HEADERS] and [CLOUD]. Looked at only for a config that has
        deployment sections (and by MultiCloud only when it has no provider section), so other runs import
        nothing more."""
        from ..config import DEPLOYMENT_SECTIONS

        present = {s.upper() for s in config.sections()}
        if not present & DEPLOYMENT_SECTIONS:
            return []
        with self._lock:
            for name in BUILTINS:
                self._resolve_builtin(name)
            classes = dict(self._classes)
        return [name for name, cls in sorted(classes.items())
                if name not in self._conflicts and cls.configured_without_section(config)]

    def unclaimed(self, config) -> list[tuple[str, str | None]]:
        """Sections of ``config`` that are neither a provider's, nor this project's, nor one the
        deployment's jobs keep: (section, the closest provider name or None). A typo such as [GCS]."""
        import difflib

        from ..config import NOT_PROVIDER_SECTIONS

        found = []
        for section in config.sections():
            name = section.upper()
            if name in NOT_PROVIDER_SECTIONS or self.is_provider(section):
                continue
            names = self.known_names()
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
            prefix = [n for n in names if name.startswith(n) or n.startswith(name)]
            found.append((section, (close or prefix or [None])[0]))
        return found

    def secret_keys(self, sections=None) -> dict[str, set[str]]:
        """Secret option names per provider section (of ``sections``, else of every known one)."""
        return self._per_class(sections, lambda cls: cls.secret_keys())

    def path_keys(self, sections=None) -> dict[str, set[str]]:
        """Option names that hold file paths (never redacted, whatever their name), per section."""
        return self._per_class(sections, lambda cls: {o.name for o in cls.options if o.kind == "path"})

    def _per_class(self, sections, what) -> dict:
        """``what(cls)`` for the provider class of each of ``sections`` (else of every known one)."""
        with self._lock:
            names = [s.upper() for s in sections] if sections is not None else list(BUILTINS) + list(self._classes)
            out = {}
            for name in names:
                if name in BUILTINS:
                    self._resolve_builtin(name)
                cls = self._classes.get(name)
                if cls is not None:
                    out[name] = what(cls)
            return out

    def is_builtin(self, cls: type) -> bool:
        """True only for the class the built-in table names (not for a look-alike reporting its name)."""
        with self._lock:
            return self._is_builtin(cls)


def contract_problems(cls: type) -> list[str]:
    """Why ``cls`` cannot serve its section: a core method missing, a declared capability with a method
    missing, a ``cannot`` declaration for something other than list/delete or without a reason."""
    from .base import CloudProvider

    missing = [m for m in REQUIRED_METHODS if getattr(cls, m, None) is getattr(CloudProvider, m)]
    lacking = {c.__name__: missing_members(cls, c) for c in getattr(cls, "capabilities", ())}
    why = [f"does not implement {', '.join(missing)}"] if missing else []
    why += [f"declares {c} but lacks {', '.join(m)}" for c, m in lacking.items() if m]
    return why + cannot_problems(cls)


def cannot_problems(cls: type) -> list[str]:
    """What is wrong with ``cls.cannot``: an operation other than list/delete, or no reason given."""
    why: list[str] = []
    cannot = getattr(cls, "cannot", None) or {}
    if not isinstance(cannot, Mapping):
        why.append("cannot must map an operation to the reason, e.g. {'list': 'no listing API'}")
    else:
        bad = [op for op in cannot if op not in DECLINABLE]
        if bad:
            why.append(f"declares it cannot {', '.join(map(str, bad))}; only {', '.join(DECLINABLE)} may be declared")
        silent = [op for op, reason in cannot.items() if op in DECLINABLE and not str(reason or "").strip()]
        if silent:
            why.append(f"declares it cannot {', '.join(silent)} without saying why")
    return why


def _writable_by_others(path: Path) -> str | None:
    """Why ``path`` is unsafe to import code from: writable by group or others (None when it is not)."""
    import stat

    try:
        st = path.stat()
    except OSError:
        return None
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _provider_classes(obj) -> list[type]:
    """The provider classes an entry point or module stands for: the class itself, or the classes a
    module defines (not those it imports)."""
    from .base import CloudProvider

    if isinstance(obj, type):
        return [obj] if issubclass(obj, CloudProvider) and obj.section else []
    name = getattr(obj, "__name__", None)
    found = []
    for value in list(vars(obj).values()) if hasattr(obj, "__dict__") else ():
        if not (isinstance(value, type) and issubclass(value, CloudProvider) and value is not CloudProvider
                and "section" in value.__dict__ and value.section):
            continue
        home = sys.modules.get(value.__module__)
        imported = home is not None and value.__module__ != name and getattr(home, value.__qualname__, None) is value
        if not imported:  # defined here, whatever module name it reports (one dressed as a built-in included)
            found.append(value)
    return found


def _same_definition(a: type, b: type) -> bool:
    """The same class defined again (a module re-imported, a test redefining it): not a rival."""
    return a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__


registry = ProviderRegistry()


def get_provider_class(section: str) -> type["CloudProvider"]:
    return registry.get(section)
