"""MultiCloud: upload to every configured provider, the seed's entry point.

(``ml_analytics.cloud_storage.cloud.MultiCloud``, the seed's name, is this class.)

As in the original, ``MultiCloud().upload_to_cloud(blob_Path, local_Path, file_Name)`` uploads
to every provider section present in ``config.ini``. Unlike the original it has no if/elif per
cloud (providers come from the registry), builds one client per provider and reuses it, tries
every provider even when one fails, returns a result per provider, and raises one
:class:`~ml_analytics.errors.UploadFailedError` naming every failure after trying them all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from collections.abc import Sequence

from .cloud_storage.base import CloudProvider
from .cloud_storage.registry import registry
from .config import COMMON_SECTION, Config
from .errors import ConfigError, UploadFailedError, UsageError
from .retry import RetryPolicy
from .transfer import DEFAULT_MEMORY_LIMIT, PlannedFile, TransferEngine, TransferResult, plan_uploads

log = logging.getLogger(__name__)


def path_keys(sections=None) -> dict[str, set[str]]:
    """Provider keys that hold file paths (never redacted, whatever their name)."""
    return registry.path_keys(sections)


def config_warnings(config: Config) -> list[str]:
    """What a run says once about its config: variables that replaced file values, sections nobody
    claims (a typo such as [GCS]), providers that failed to load or replace a built-in."""
    lines = [f"notice: {n}" for n in config.notices()]
    for section, closest in registry.unclaimed(config):
        hint = f"; did you mean [{closest}]?" if closest else ""
        lines.append(f"section [{section}] in {config.path} is not a provider, not this project's and not one the "
                     f"ml-analytics jobs use: ignored{hint}")
    return lines + registry.unannounced()


def config_secrets(config: Config) -> set[str]:
    """Every credential value in ``config``: declared secret keys of its provider sections, and keys
    whose names look secret (except declared file paths)."""
    sections = [s for s in config.sections() if registry.is_provider(s)]
    return config.secrets(registry.secret_keys(sections), registry.path_keys(sections))


class MultiCloud:
    """Every configured storage provider, built lazily, one client each."""

    def __init__(self, config_path: str | os.PathLike | None = None, *, sections: Sequence[str] | None = None,
                 config: Config | None = None, concurrency: int | None = None):
        # No config found: a ConfigError naming where it looked; never a silent local default.
        self.config = config or Config.load(config_path, known_sections=tuple(registry.known_names()))
        registry.prepare(self.config)  # drop-in folder loaded; a section whose provider is broken fails here
        if not self.config.announced:  # the command line has said these already
            self.config.announced = True
            for warning in config_warnings(self.config):
                log.warning("%s", warning)
        # Unset: each provider's own default_concurrency. Bounds: config.COMMON_NUMBERS.
        self.concurrency = concurrency or self.config.number(COMMON_SECTION, "concurrency")
        memory_mib = self.config.number(COMMON_SECTION, "memory_limit_mib")
        self.memory_limit = memory_mib * 1024 * 1024 if memory_mib else DEFAULT_MEMORY_LIMIT
        self.retry = RetryPolicy.from_config(self.config)  # read once: a bad setting fails now, for every provider
        self._providers: dict[str, CloudProvider] = {}
        self.last_engine: TransferEngine | None = None  # the last batch's engine (second-pass figures)
        if sections:
            chosen = []
            for name in sections:
                cls = registry.get(name)  # unknown provider name: UsageError listing the known ones
                real = next((s for s in self.config.sections() if s.upper() == cls.section), None)
                if real is None and cls.configured_without_section(self.config):
                    real = cls.section  # configured through the deployment's own sections (release 6.0)
                if real is None:
                    raise UsageError(f"--to {name}: {self.config.path} has no [{cls.section}] section")
                if real not in chosen:
                    chosen.append(real)
            self.sections = chosen
        else:
            configured = self.configured_sections()
            if not configured:
                blank = [s for s in self.config.sections() if registry.is_provider(s) and self.config.is_blank(s)]
                if blank:  # rendered with every value empty (an unset deployment variable): name it
                    raise ConfigError(f"every value is empty, so no storage provider is configured; "
                                      f"fill in its keys ({', '.join(self.config.raw_keys(blank[0]))})",
                                      path=self.config.path, section=blank[0])
                raise ConfigError(f"no storage provider configured; add a section such as [LOCAL] "
                                  f"(known: {', '.join(registry.known_names())})", path=self.config.path)
            self.sections = configured

    def configured_sections(self) -> list[str]:
        """Provider sections present in the config and not entirely blank; with none, those the config
        configures through the deployment's own sections (release 6.0's config.ini configures [ML_CORE];
        next to another provider section, an [ML_CORE] header, even empty, adds it)."""
        found = [s for s in self.config.sections() if registry.is_provider(s) and not self.config.is_blank(s)]
        return found or registry.implied(self.config)

    def provider(self, section: str) -> CloudProvider:
        if section not in self._providers:
            cls = registry.get(section)
            self._providers[section] = cls.from_config(self.config, section, retry=self.retry)
        return self._providers[section]

    def providers(self) -> dict[str, CloudProvider]:
        return {s: self.provider(s) for s in self.sections}

    @property
    def secrets(self) -> set[str]:
        found = config_secrets(self.config)
        for p in self._providers.values():
            found |= p.secrets
        return found

    def engine(self, on_bytes=None) -> TransferEngine:
        return TransferEngine(self.providers(), concurrency=self.concurrency, memory_limit=self.memory_limit,
                              secrets=self.secrets, on_bytes=on_bytes, retry=self.retry)

    # -- the seed's API -------------------------------------------------------------------------
    def upload_to_cloud(self, blob_Path: str, local_Path: str, file_Name: str) -> list[TransferResult]:  # noqa: N803
        """Upload ``local_Path/file_Name`` to ``blob_Path/file_Name`` in every configured provider."""
        from .keys import object_key
        from .source import check_regular_file

        source = os.path.join(local_Path, file_Name)
        item = PlannedFile(source=Path(source), key=object_key(blob_Path, file_Name),
                           size=check_regular_file(source).st_size)
        results = self.engine().run([item])
        if any(r.status == "failed" for r in results):
            raise UploadFailedError(results)
        return results

    # -- batches ------------------------------------------------------------------------------------
    def upload(self, paths: Sequence[str | os.PathLike], prefix: str = "", *, skip_existing: bool = False,
               follow_symlinks: bool = False, on_result=None) -> list[TransferResult]:
        """Upload files and folders; returns one result per (file, provider), failures included."""
        planned = plan_uploads(paths, prefix, follow_symlinks=follow_symlinks)
        return self.run(planned, skip_existing=skip_existing, on_result=on_result)

    def run(self, planned: Sequence[PlannedFile], *, skip_existing: bool = False, on_result=None,
            on_bytes=None, keep: bool = True) -> list[TransferResult]:
        """Upload already-planned files to every selected provider.

        Special files a folder walk skipped (``Plan.skipped``) come back as ``skipped`` results with
        the reason in ``error``, one per provider. With ``keep=False`` results only go to
        ``on_result`` (constant memory for huge batches). ``self.last_engine`` tells how many files
        needed a second pass.
        """
        results: list[TransferResult] = []
        for path, key, reason in getattr(planned, "skipped", ()):
            for section in self.sections:
                result = TransferResult(section, key or os.path.basename(path), None, 0, None, "skipped",
                                        f"{path}: {reason}", path)
                if keep:
                    results.append(result)
                if on_result:
                    on_result(section, result)
        self.last_engine = None
        if not planned:
            return results
        self.last_engine = engine = self.engine(on_bytes)
        return results + engine.run(planned, skip_existing=skip_existing, on_result=on_result, keep=keep)

    def close(self) -> None:
        for p in self._providers.values():
            p.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
