"""What executors get: each provider's settings, never a config file or a live client.

The driver resolves the config once (file, environment overrides, interpolation) and builds its
providers; what travels to executors is each provider's :class:`~ml_analytics.cloud_storage.base.ProviderSettings`
(a frozen, picklable value: the class path and the arguments it was built with, relative folders
already made absolute). Executors rebuild the providers from them, once per process, and keep them
(clients and connections) for every task they run. The settings hold credentials: they travel only
inside task closures (never in job descriptions, RDD names, logs or exceptions) and are never printed
(their repr masks secret values).
"""

from __future__ import annotations

import threading

from ..cloud_storage.base import CloudProvider, ProviderSettings
from ..config import Config
from ..multicloud import MultiCloud


def open_multicloud(config=None, sections=None) -> MultiCloud:
    """A MultiCloud from a config path, a Config, a MultiCloud or None (the usual lookup)."""
    if isinstance(config, MultiCloud):
        return config
    if isinstance(config, Config):
        return MultiCloud(config=config, sections=sections)
    return MultiCloud(config, sections=sections)


def shipped_settings(mc: MultiCloud) -> tuple[tuple[str, ProviderSettings], ...]:
    """What executors need to build the same providers: (section, settings) of each, in order."""
    return tuple((section, provider.settings) for section, provider in mc.providers().items())


class ExecutorProviders:
    """The providers an executor built from shipped settings."""

    def __init__(self, shipped: tuple[tuple[str, ProviderSettings], ...]):
        self.providers: dict[str, CloudProvider] = {section: settings.build() for section, settings in shipped}

    @property
    def secrets(self) -> set[str]:
        found: set[str] = set()
        for provider in self.providers.values():
            found |= provider.secrets
        return found


_cache: dict[tuple, ExecutorProviders] = {}
_cache_lock = threading.Lock()


def executor_providers(shipped: tuple[tuple[str, ProviderSettings], ...]) -> ExecutorProviders:
    """One set of providers per executor process and settings, reused by every task it runs."""
    with _cache_lock:
        found = _cache.get(shipped)
        if found is None:
            found = _cache[shipped] = ExecutorProviders(shipped)
        return found
