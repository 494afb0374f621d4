"""Reading ``config.ini`` in the seed's format.

Where the file comes from: ``--config``, else ``$ML_ANALYTICS_CONFIG``, else ``./config.ini``
if it exists, else the embedded default (one ``[LOCAL]`` store with its defaults).

Values are read with ``configparser`` and ``ExtendedInterpolation`` exactly as the original
jobs read them, so existing files keep working. Then:

* ``ML_ANALYTICS_<SECTION>_<KEY>`` environment variables override or fill keys, so credentials
  need not sit in files (``ML_ANALYTICS_AWS_SECRET_ACCESS_KEY``, ``ML_ANALYTICS_AZURE_SAS_TOKEN``).
  A variable for a known section that the file lacks adds that section.
* Empty values count as unset; a section whose values are all empty is not configured.
* A value still holding an unrendered ``{{ placeholder }}`` is an error naming section and key.

Values of secret keys are never printed: :meth:`Config.secrets` lists them so output can be
redacted, and errors name keys, never values.
"""

from __future__ import annotations

import configparser
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

ENV_CONFIG = "ML_ANALYTICS_CONFIG"
ENV_PREFIX = "ML_ANALYTICS_"
DEFAULT_FILE = "config.ini"
EMBEDDED_DEFAULT = "[LOCAL]\n"
EMBEDDED_NAME = "<embedded default>"

# Sections that are not providers but that this project reads.
COMMON_SECTION = "COMMON"
DRUID_SECTION = "DRUID"

_PLACEHOLDER = re.compile(r"\{\{.*?\}\}")  # Jinja-style; valid JSON never contains "{{"
# Keys whose values are treated as secrets even when no provider declares them (defence in depth).
_SECRET_NAME = re.compile(r"(?i)(secret|password|passwd|token|sas|account_key|access_key|connection_string|credential|private)")


def looks_secret(key: str) -> bool:
    return bool(_SECRET_NAME.search(key))


@dataclass
class Config:
    """A parsed configuration: sections of string values, with where they came from."""

    parser: configparser.ConfigParser
    path: str  # file path, or EMBEDDED_NAME
    env: dict[str, str] = field(default_factory=dict)
    _env_values: dict[tuple[str, str], str] = field(default_factory=dict)

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, env: dict[str, str] | None = None,
             known_sections: tuple[str, ...] = ()) -> "Config":
        env = dict(os.environ if env is None else env)
        chosen = path if path is not None else env.get(ENV_CONFIG) or None
        if chosen is None and Path(DEFAULT_FILE).is_file():
            chosen = DEFAULT_FILE
        parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
        parser.optionxform = str.lower  # keys are case-insensitive, as configparser always did
        if chosen is None:
            parser.read_string(EMBEDDED_DEFAULT, source=EMBEDDED_NAME)
            where = EMBEDDED_NAME
        else:
            where = str(chosen)
            p = Path(chosen)
            if not p.exists():
                raise ConfigError("config file not found", path=where)
            if p.is_dir():
                raise ConfigError("is a directory, not a config file", path=where)
            try:
                text = p.read_text(encoding="utf-8")
            except PermissionError:
                raise ConfigError("config file is not readable (permission denied)", path=where) from None
            except UnicodeDecodeError as e:
                raise ConfigError(f"config file is not UTF-8 text (byte {e.start})", path=where) from None
            except OSError as e:
                raise ConfigError(f"cannot read config file: {e.strerror}", path=where) from None
            try:
                parser.read_string(text, source=where)
            except configparser.DuplicateSectionError as e:
                raise ConfigError(f"line {e.lineno}: section [{e.section}] appears twice", path=where) from None
            except configparser.DuplicateOptionError as e:
                raise ConfigError(f"line {e.lineno}: key appears twice", path=where, section=e.section, key=e.option) from None
            except configparser.MissingSectionHeaderError as e:
                raise ConfigError(f"line {e.lineno}: no valid [SECTION] header before this line (missing or malformed header)", path=where) from None
            except configparser.ParsingError as e:
                lines = ", ".join(str(n) for n, _ in e.errors[:5])
                raise ConfigError(f"malformed INI at line {lines}", path=where) from None
        cfg = cls(parser=parser, path=where, env=env)
        cfg._apply_env(known_sections)
        return cfg

    def _apply_env(self, known_sections: tuple[str, ...]) -> None:
        names = sorted(set(self.parser.sections()) | set(known_sections) | {COMMON_SECTION, DRUID_SECTION},
                       key=len, reverse=True)
        for var, value in self.env.items():
            if not var.startswith(ENV_PREFIX) or var == ENV_CONFIG:
                continue
            rest = var[len(ENV_PREFIX):]
            for section in names:
                if rest.upper().startswith(section.upper() + "_") and len(rest) > len(section) + 1:
                    key = rest[len(section) + 1:].lower()
                    real = next((s for s in self.parser.sections() if s.upper() == section.upper()), section)
                    self._env_values[(real, key)] = value
                    break

    # -- reading -----------------------------------------------------------------------
    def sections(self) -> list[str]:
        extra = [s for s, _ in self._env_values if s not in self.parser.sections()]
        return self.parser.sections() + sorted(set(extra))

    def has_section(self, section: str) -> bool:
        return section in self.sections()

    def raw_keys(self, section: str) -> list[str]:
        keys = list(self.parser.options(section)) if self.parser.has_section(section) else []
        keys += [k for (s, k) in self._env_values if s == section and k not in keys]
        return keys

    def get(self, section: str, key: str, default: str | None = None) -> str | None:
        """A value with env override applied; empty counts as unset; placeholders refused."""
        key = key.lower()
        if (section, key) in self._env_values:
            value = self._env_values[(section, key)]
            source = f"${ENV_PREFIX}{section.upper()}_{key.upper()}"
        elif self.parser.has_section(section) and self.parser.has_option(section, key):
            try:
                value = self.parser.get(section, key)
            except configparser.InterpolationError as e:
                detail = "refers to a missing key" if isinstance(e, configparser.InterpolationMissingOptionError) \
                    else "has a bad ${...} reference (write $$ for a literal $)"
                raise ConfigError(detail, path=self.path, section=section, key=key) from None
            source = None
        else:
            return default
        value = value.strip()
        if _PLACEHOLDER.search(value):
            where = f" (from {source})" if source else ""
            raise ConfigError(f"still holds an unrendered {{{{ placeholder }}}}{where}; render the config or set it",
                              path=self.path, section=section, key=key)
        return value if value else default

    def number(self, section: str, key: str, *, whole: bool = True, minimum: float = 0) -> int | float | None:
        """A number from the config (None when unset): a whole number unless ``whole`` is False, at
        least ``minimum``; anything else is a ConfigError naming the file, section and key."""
        raw = self.get(section, key)
        if raw is None:
            return None
        try:
            value = int(raw) if whole else float(raw)
        except ValueError:
            raise ConfigError(f"expected a {'whole number' if whole else 'number'}, got {raw!r}", path=self.path,
                              section=section, key=key) from None
        if value < minimum:
            raise ConfigError(f"must be at least {minimum:g}", path=self.path, section=section, key=key)
        return value

    def values(self, section: str) -> dict[str, str]:
        """Every set (non-empty) key of a section."""
        out = {}
        for key in self.raw_keys(section):
            value = self.get(section, key)
            if value is not None:
                out[key] = value
        return out

    def _raw(self, section: str, key: str) -> str:
        if (section, key) in self._env_values:
            return self._env_values[(section, key)].strip()
        return self.parser.get(section, key, raw=True).strip()

    def is_blank(self, section: str) -> bool:
        """True when the section has keys and every value is empty (a rendered-but-unused section).

        A section with no keys at all is not blank: it asks for the provider's defaults.
        """
        keys = self.raw_keys(section)
        return bool(keys) and not any(self._raw(section, key) for key in keys)

    def secrets(self, secret_keys: dict[str, set[str]] | None = None) -> set[str]:
        """Every value that must never be printed: declared secret keys plus secret-looking names.

        Both the raw and the interpolated value count, so ``${COMMON:key}`` indirections are covered.
        """
        found = set()
        secret_keys = secret_keys or {}
        for section in self.sections():
            for key in self.raw_keys(section):
                if key in secret_keys.get(section, set()) or looks_secret(key):
                    found.add(self._raw(section, key))
                    try:
                        found.add((self.parser.get(section, key) if self.parser.has_option(section, key) else "").strip())
                    except configparser.Error:
                        pass
        return {s for s in found if s}

    def permission_warning(self) -> str | None:
        """A warning when a config file holding credentials can be read by other users."""
        if self.path == EMBEDDED_NAME or sys.platform == "win32":
            return None
        try:
            mode = Path(self.path).stat().st_mode
        except OSError:
            return None
        if mode & (stat.S_IRGRP | stat.S_IROTH) and self.secrets():
            return (f"{self.path}: holds credentials and is readable by other users "
                    f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {self.path}")
        return None
