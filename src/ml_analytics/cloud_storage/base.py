"""The provider contract every cloud implements.

A provider is a class with a config ``section`` and declared ``options`` (its config keys:
required, optional, secret). It is registered by the registry's table (built-ins) or by a plugin
(entry point or drop-in file, see :mod:`.registry`), never by being defined; config checking,
``ml-analytics providers`` and ``ml-analytics init`` then work for it with no other edit. The seed's
API, ``upload_files(bucketPath, localPath, fileName)``, is implemented here once on top of
:meth:`CloudProvider.put_file`.

The core a provider must implement: ``put_file``, ``stat``, ``list``, ``delete`` (``put_bytes`` and
``uri`` have defaults). What it can do beyond that it declares in ``capabilities`` (see
:mod:`.capabilities`); nobody probes for methods. A store that cannot list or delete at all (a
signing service that hands out write and read URLs only) still implements the method, raising
:class:`~ml_analytics.errors.NotSupportedError`, and declares it with the reason in ``cannot``:
callers with another way read the declaration (skip-unchanged asks key by key instead of listing),
and the conformance suite skips those checks saying why.

Settings travel, clients do not: the arguments a provider was built with are kept as one frozen,
picklable :class:`ProviderSettings` (``provider.settings``); ``settings.build()`` makes an equal
provider anywhere (a Spark executor), and pickling a provider pickles only its settings. Clients and
connections are made lazily, on first use, in the process that uses them.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError, MLAnalyticsError, redact
from ..keys import normalize_prefix, object_key

if TYPE_CHECKING:
    from ..config import Config
    from ..retry import RetryPolicy


@dataclass(frozen=True)
class Option:
    """One config key of a provider section."""

    name: str  # key in config.ini, e.g. "access_key"
    help: str = ""
    required: bool = False
    secret: bool = False
    default: str | None = None
    arg: str | None = None  # constructor keyword (the seed's camelCase name); defaults to ``name``
    kind: str = "str"  # "str" | "int" | "bool" | "path" | "url" (an http(s) endpoint, checked before use)
    # (SECTION, key) of a deployment's own config read when this provider's section lacks the key: release
    # 6.0's config.ini keeps ml-core-service's URL in [ML_CORE_SERVICE_URL] url, not in a provider section.
    fallback: tuple[str, str] | None = None

    @property
    def argument(self) -> str:
        return self.arg or self.name

    def convert(self, value: str, *, path: str, section: str) -> Any:
        if self.kind == "int":
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"expected a whole number, got {value!r}", path=path, section=section,
                                  key=self.name) from None
        if self.kind == "bool":
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"expected true or false, got {value!r}", path=path, section=section, key=self.name)
        return value


@dataclass
class StoredObject:
    """What an upload stored: returned by ``put_file`` and ``upload_files``."""

    provider: str
    key: str
    uri: str
    bytes: int
    md5: str | None
    etag: str | None = None


@dataclass
class ObjectInfo:
    """One object as a store lists it."""

    key: str
    size: int
    etag: str | None = None
    md5: str | None = None  # hex, when the store keeps a whole-object MD5
    last_modified: datetime | None = None
    extra: dict = field(default_factory=dict)
    crc64: str | None = None  # hex CRC-64/NVME of the whole object, when the store keeps one (Azure blocks)


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider was built from: its class (by import path) and constructor arguments.

    Frozen and picklable (plain values and a :class:`~ml_analytics.retry.RetryPolicy`), so it can be
    shipped (Spark executors) and rebuilt with :meth:`build`. Its repr masks the values of the
    provider's secret options."""

    cls: str  # "package.module:Class"
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def provider_class(self) -> type["CloudProvider"]:
        module, _, name = self.cls.partition(":")
        return getattr(importlib.import_module(module), name)

    def build(self) -> "CloudProvider":
        return self.provider_class()(*self.args, **dict(self.kwargs))

    def __repr__(self) -> str:
        try:
            secret_args = {o.argument for o in self.provider_class().options if o.secret}
        except Exception:  # the class cannot be imported here: mask every string value
            secret_args = {k for k, _ in self.kwargs}
        shown = ", ".join(f"{k}={'***' if k in secret_args and v else v!r}" for k, v in self.kwargs)
        return f"ProviderSettings({self.cls}{', ' if shown else ''}{shown})"


class CloudProvider:
    """Base class of every storage provider."""

    section: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    description: ClassVar[str] = ""
    extra: ClassVar[str | None] = None  # the pip extra that installs its SDK
    uri_scheme: ClassVar[str] = ""
    # What it can do beyond the core: protocols from .capabilities, checked when the class is registered.
    capabilities: ClassVar[frozenset] = frozenset()
    # Uploads in flight per batch, each on its own thread, unless [COMMON] concurrency says otherwise.
    default_concurrency: ClassVar[int] = 16
    # True when put_file reads a file once (hashing on the way); False when it reads it twice (hash,
    # then send): the conformance suite then also changes the file during the second read.
    reads_once: ClassVar[bool] = True
    # Core operations this store cannot do at all, with the reason: {"list": "...", "delete": "..."} (only
    # these two may be declared; checked at registration). The methods raise NotSupportedError.
    cannot: ClassVar[Mapping[str, str]] = {}

    bucket: str = ""

    def __new__(cls, *args: Any, **kwargs: Any):
        cls.check_arguments(kwargs)
        self = super().__new__(cls)
        # Remembered for .settings, whatever the subclass's constructor does with them.
        self._built_from = (args, tuple(kwargs.items()))
        return self

    @classmethod
    def check_arguments(cls, kwargs: dict[str, Any]) -> None:
        """Refuse values no client library should ever see, naming the key (never the value): a control
        character anywhere (a line break in a key from the environment), an endpoint that is not a usable
        http(s) URL. Some libraries panic on such values instead of raising (obstore's Rust core)."""
        from ..config import control_character, url_problem

        by_arg = {o.argument: o for o in cls.options}
        for arg, value in kwargs.items():
            if not isinstance(value, str):
                continue
            opt = by_arg.get(arg)
            key = opt.name if opt else arg
            bad = control_character(value)
            if bad:
                raise ConfigError(f"contains a control character ({bad}); not used", section=cls.section, key=key)
            if opt is not None and opt.kind == "url" and value:
                why = url_problem(value)
                if why:
                    raise ConfigError(f"{why}; not used", section=cls.section, key=key)

    # -- settings ---------------------------------------------------------------------------------
    @property
    def settings(self) -> ProviderSettings:
        args, kwargs = getattr(self, "_built_from", ((), ()))
        return ProviderSettings(f"{type(self).__module__}:{type(self).__qualname__}", tuple(args), kwargs)

    def __reduce__(self):
        return (_rebuild, (self.settings,))

    def can(self, capability: type) -> bool:
        """Whether this provider declared ``capability`` (a protocol from :mod:`.capabilities`)."""
        return capability in type(self).capabilities

    # -- construction from config --------------------------------------------------------
    @classmethod
    def secret_keys(cls) -> set[str]:
        return {o.name for o in cls.options if o.secret}

    @classmethod
    def settings_from_config(cls, config: "Config", section: str | None = None) -> dict[str, Any]:
        """Constructor keyword arguments from a config section, checked against ``options``."""
        section = section or cls.section
        values = config.values(section)
        kwargs: dict[str, Any] = {}
        for opt in cls.options:
            value = values.get(opt.name)
            if value is None and opt.fallback is not None:
                value = config.get(*opt.fallback)
            if value is None:
                value = opt.default
            if value is None:
                if opt.required:
                    raise ConfigError("required key is missing or empty", path=config.path, section=section,
                                      key=opt.name)
                continue
            if opt.kind == "path":  # relative to the config file's folder, as the deployment writes them
                value = str(config.folder / os.path.expanduser(value))
            kwargs[opt.argument] = opt.convert(value, path=config.path, section=section)
        cls.validate_settings(kwargs, config=config, section=section)
        return kwargs

    @classmethod
    def configured_without_section(cls, config: "Config") -> bool:
        """True when ``config`` has no section of this provider's but holds every required key through
        the options' fallbacks: the deployment's own sections configure it (release 6.0's config.ini
        configures [ML_CORE] through [ML_CORE_SERVICE_URL], [API_HEADERS] and [CLOUD])."""
        if not any(o.fallback for o in cls.options):
            return False
        if any(s.upper() == cls.section and not config.is_blank(s) for s in config.sections()):
            return False  # its own section configures it (a section rendered all empty counts as absent)
        return all(o.fallback is not None and config.get(*o.fallback) is not None
                   for o in cls.options if o.required)

    @classmethod
    def validate_settings(cls, kwargs: dict[str, Any], *, config: "Config", section: str) -> None:
        """Hook for cross-key rules (e.g. exactly one of key / SAS). Raise ConfigError."""

    @classmethod
    def takes_retry(cls) -> bool:
        import inspect

        return "retry" in inspect.signature(cls.__init__).parameters

    @classmethod
    def from_config(cls, config: "Config", section: str | None = None, *,
                    retry: "RetryPolicy | None" = None) -> "CloudProvider":
        """Build from a config section; ``retry`` is the policy already read from ``[COMMON]``, if any."""
        kwargs = cls.settings_from_config(config, section)
        if cls.takes_retry():
            if retry is None:
                from ..retry import RetryPolicy

                retry = RetryPolicy.from_config(config)
            kwargs.setdefault("retry", retry)
        try:
            return cls(**kwargs)
        except ConfigError as e:  # constructors name section and key; add the file
            if e.path:
                raise
            raise type(e)(e.detail, path=config.path, section=e.section or section or cls.section, key=e.key) from None

    # -- the contract ------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike, key: str) -> StoredObject:
        raise NotImplementedError

    def put_bytes(self, data: bytes, key: str, md5: str | None = None) -> StoredObject:
        """Store bytes already in memory (the engine reads small files once for every provider)."""
        fd, tmp = tempfile.mkstemp(prefix="ml-analytics-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return self.put_file(tmp, key)
        finally:
            os.unlink(tmp)

    def buffer_bytes(self, size: int) -> int:
        """Memory an upload of ``size`` bytes holds at once (for the engine's memory cap)."""
        return min(size, 8 * 1024 * 1024)

    def stat(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def stored_md5(self, info: ObjectInfo) -> str | None:
        """Whole-object MD5 (hex) of a stored object when the store can tell; used by skip-unchanged."""
        return info.md5

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def uri(self, key: str) -> str:
        return f"{self.uri_scheme}://{self.bucket}/{key}"

    def uri_prefix(self) -> str:
        """What every URI of this provider's objects starts with (``s3://bucket/``)."""
        return self.uri("_").rsplit("_", 1)[0]

    def key_for_uri(self, uri: str) -> str | None:
        """The key of one of this provider's objects given its URI, or None if the URI is not ours."""
        prefix = self.uri_prefix()
        return uri[len(prefix):] if uri.startswith(prefix) and len(uri) > len(prefix) else None

    def check(self) -> str:
        """Prove the bucket is reachable and writable: write, stat and delete a probe object."""
        key = f".ml-analytics-check/{uuid.uuid4().hex}"
        self.put_bytes(b"ml-analytics check\n", key)
        try:
            if self.stat(key) is None:
                raise ConfigError(f"{self.section}: probe object written but not visible")
        finally:
            self.delete(key)
        return f"bucket '{self.bucket}' reachable and writable"

    def close(self) -> None:
        """Release clients and connections."""

    # -- the seed's API -----------------------------------------------------------------------
    def upload_files(self, bucketPath: str, localPath: str, fileName: str) -> StoredObject:  # noqa: N803 (seed names)
        """Upload ``localPath/fileName`` to ``bucketPath/fileName`` (the seed's method)."""
        return self.put_file(Path(localPath) / fileName, object_key(bucketPath, fileName))

    # -- errors and secrets -------------------------------------------------------------------------
    @property
    def secrets(self) -> set[str]:
        """Credential values this instance holds, for redaction of library messages."""
        return {str(v) for k, v in vars(self).items() if k.startswith("_secret") and v}

    def redact(self, text: str) -> str:
        return redact(str(text), self.secrets)

    def map_error(self, exc: BaseException, key: str = "", writing: bool = False) -> Exception:
        """This store's translation of a library exception into the project's typed errors (providers
        override; the status-to-error table is :data:`ml_analytics.errors.STATUS_ERRORS`)."""
        return exc

    @contextmanager
    def translating_errors(self, key: str = "", writing: bool = False):
        """Let our own errors through; turn a library's into a typed, redacted one-line error."""
        try:
            yield
        except MLAnalyticsError:
            raise
        except Exception as e:
            raise self.map_error(e, key, writing) from None

    @staticmethod
    def list_prefix(prefix: str) -> str:
        return normalize_prefix(prefix)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(section={self.section!r}, bucket={self.bucket!r})"


def _rebuild(settings: ProviderSettings) -> CloudProvider:
    return settings.build()
