"""Reading ``config.ini`` in the seed's format.

Where the file comes from: ``--config``, else ``$ML_ANALYTICS_CONFIG``, else ``./config.ini``
if it exists. With none of them, the configuration may come from the environment alone (a
``ML_ANALYTICS_<SECTION>_<KEY>`` variable for a provider section); failing that the library refuses
with a ConfigError naming where it looked, and only the command line, which asks for it, falls back
to the embedded default (one ``[LOCAL]`` store with its defaults) and says so.

Values are read with ``configparser`` and ``ExtendedInterpolation`` exactly as the original
jobs read them, so existing files keep working. Then:

* ``ML_ANALYTICS_<SECTION>_<KEY>`` environment variables override or fill keys of the sections
  the file has, so credentials need not sit in files (``ML_ANALYTICS_AWS_SECRET_ACCESS_KEY``,
  ``ML_ANALYTICS_AZURE_SAS_TOKEN``). They never add a section to a file: an exported
  ``ML_ANALYTICS_AWS_*`` must not start uploads to AWS from an ORACLE deployment's config
  (:attr:`Config.ignored_env` lists such variables so the CLI can say so).
* A file may start with a UTF-8 byte-order mark.
* Every number in ``[COMMON]`` is checked when the file is loaded (:data:`COMMON_NUMBERS`).
* Empty values count as unset; a section whose values are all empty is not configured.
* A value still holding an unrendered ``{{ placeholder }}`` is an error naming section and key.

Values of secret keys are never printed: :meth:`Config.secrets` lists them so output can be
redacted, and errors name keys, never values.
"""

from __future__ import annotations

import configparser
import math
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
ENVIRONMENT_NAME = "<environment>"  # no file: sections from ML_ANALYTICS_<SECTION>_<KEY> variables only

# Sections that are not providers but that this project reads.
COMMON_SECTION = "COMMON"
DRUID_SECTION = "DRUID"
OWN_SECTIONS = frozenset({COMMON_SECTION, DRUID_SECTION})
# Sections the ml-analytics-service jobs keep in the same config.ini (releases 5.1 to 6.0): neither
# providers nor this project's; never taken for a misspelt provider. Release 6.0 adds [API_ENDPOINTS],
# [API_CREDENTIALS] and [JSON_VARIABLE]; its [ML_CORE_SERVICE_URL], [API_HEADERS] and [CLOUD] also configure
# the [ML_CORE] provider (its options' fallbacks).
DEPLOYMENT_SECTIONS = frozenset({
    "ML_APP_NAME", "API_HEADERS", "ML_SURVEY_SERVICE_URL", "ML_CORE_SERVICE_URL", "MONGO", "KAFKA", "LOGS",
    "OUTPUT_DIR", "SLACK", "VAM", "CLOUD", "REDIS", "ELASTICSEARCH", "POSTGRES", "KEYCLOAK", "NVSK",
    "API_ENDPOINTS", "API_CREDENTIALS", "JSON_VARIABLE",
})
NOT_PROVIDER_SECTIONS = OWN_SECTIONS | DEPLOYMENT_SECTIONS


@dataclass(frozen=True)
class NumberRule:
    """What a numeric setting may hold: whole or not, and its bounds (``above``: exclusive lower bound)."""

    whole: bool = True
    minimum: float | None = 0
    above: float | None = None
    maximum: float = 10 ** 6
    unit: str = ""


# Every number [COMMON] may hold; all are checked when a file is loaded, whether or not a provider uses them.
COMMON_NUMBERS: dict[str, NumberRule] = {
    "concurrency": NumberRule(whole=True, minimum=1, maximum=512),
    "memory_limit_mib": NumberRule(whole=True, minimum=16, maximum=64 * 1024, unit="MiB"),
    "max_retries": NumberRule(whole=True, minimum=0, maximum=100),
    "retry_timeout": NumberRule(whole=False, minimum=None, above=0, maximum=86400, unit="seconds"),
    "connect_timeout": NumberRule(whole=False, minimum=None, above=0, maximum=3600, unit="seconds"),
    "request_timeout": NumberRule(whole=False, minimum=None, above=0, maximum=86400, unit="seconds"),
}
_DEFAULT_RULE = NumberRule()

_PLACEHOLDER = re.compile(r"\{\{.*?\}\}")  # Jinja-style; valid JSON never contains "{{"
# Keys whose values are treated as secrets even when no provider declares them (defence in depth).
_SECRET_NAME = re.compile(r"(?i)(secret|password|passwd|token|sas|account_key|access_key|connection_string|credential|private)")


def _read_regular(path: Path) -> bytes:
    """A file's bytes, opened without blocking and refused unless it is (still) a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


# -- values no library should see ----------------------------------------------------------------------
def control_character(value: str) -> str | None:
    """The first control character in ``value`` (line breaks, tabs, NUL, DEL...), as ``U+000A``, or None."""
    for ch in value:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return f"U+{ord(ch):04X}"
    return None


_HOST_CHARS = re.compile(r"[A-Za-z0-9.\-_~%]+")


def url_problem(url: str, *, schemes=("http", "https")) -> str | None:
    """Why ``url`` is not an endpoint URL a client can use (None when it is): scheme, host, port range,
    brackets, spaces and characters a host cannot have, checked before any library sees it (a Rust
    library panics on some of them instead of raising)."""
    from urllib.parse import urlsplit

    if control_character(url):
        return f"contains a control character ({control_character(url)})"
    if any(c.isspace() for c in url):
        return "contains a space"
    try:
        parts = urlsplit(url)
    except ValueError as e:  # "Invalid IPv6 URL": an unclosed [
        return f"is not a URL (unbalanced bracket? {e})"
    if parts.scheme not in schemes or not parts.netloc:
        return f"must be an {' or '.join(schemes)} URL like {schemes[-1]}://host:port"
    host = parts.netloc.rpartition("@")[2]
    if "[" in host or "]" in host:
        inside = host[host.find("[") + 1: host.find("]")] if "[" in host and "]" in host else ""
        if host.count("[") != 1 or host.count("]") != 1 or not inside or not all(c in "0123456789abcdefABCDEF:."
                                                                                  for c in inside):
            return "has an unbalanced bracket or a bad IPv6 address"
    try:
        port = parts.port
    except ValueError:
        return "has a port out of range (1-65535) or not a number"
    if port == 0:
        return "has a port out of range (1-65535)"
    name = parts.hostname or ""
    if not name:
        return "has no host"
    if not name.startswith("[") and ":" not in name and not _HOST_CHARS.fullmatch(name):
        bad = next(c for c in name if not _HOST_CHARS.fullmatch(c))
        return f"has a character a host name cannot have ({bad!r})"
    return None


def looks_secret(key: str) -> bool:
    return bool(_SECRET_NAME.search(key))


def _env_key(var: str, sections) -> tuple[str, str] | None:
    """(SECTION, key) named by an ``ML_ANALYTICS_<SECTION>_<KEY>`` variable, longest section first."""
    if not var.startswith(ENV_PREFIX) or var == ENV_CONFIG:
        return None
    rest = var[len(ENV_PREFIX):]
    for section in sorted(set(sections), key=len, reverse=True):
        if rest.upper().startswith(section.upper() + "_") and len(rest) > len(section) + 1:
            return section, rest[len(section) + 1:].lower()
    return None


@dataclass
class Config:
    """A parsed configuration: sections of string values, with where they came from."""

    parser: configparser.ConfigParser
    path: str  # file path, EMBEDDED_NAME or ENVIRONMENT_NAME
    env: dict[str, str] = field(default_factory=dict, repr=False)
    _env_values: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    ignored_env: list[str] = field(default_factory=list)  # variables naming a section the file lacks
    replaced_env: list[tuple[str, str, str]] = field(default_factory=list)  # (variable, section, key) it replaced
    announced: bool = field(default=False, repr=False)  # its warnings were shown (once per run)

    def __repr__(self) -> str:  # never the environment or a value: they may be credentials
        return f"Config(path={self.path!r}, sections={self.sections()!r})"

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, env: dict[str, str] | None = None,
             known_sections: tuple[str, ...] = (), embedded_default: bool = False) -> "Config":
        """Read the config: ``path``, else ``$ML_ANALYTICS_CONFIG``, else ``./config.ini``.

        With no file, provider sections may come from the environment alone; with none there
        either, a ConfigError names where it looked, unless ``embedded_default`` (the CLI's first
        run) asks for the embedded ``[LOCAL]`` store instead. ``known_sections`` are the provider
        sections (the registry's).
        """
        env = dict(os.environ if env is None else env)
        chosen = path if path is not None else env.get(ENV_CONFIG) or None
        if chosen is None and Path(DEFAULT_FILE).is_file():
            chosen = DEFAULT_FILE
        parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
        parser.optionxform = str.lower  # keys are case-insensitive, as configparser always did
        if chosen is not None:
            cfg = cls(parser=parser, path=str(chosen), env=env)
            cfg._read_file(Path(chosen))
            cfg._apply_env(cfg.parser.sections(), known=tuple(known_sections) + (COMMON_SECTION, DRUID_SECTION))
        else:
            from_env = {k for k in (_env_key(v, known_sections) for v, value in env.items() if value.strip()) if k}
            if from_env:  # environment-only configuration
                cfg = cls(parser=parser, path=ENVIRONMENT_NAME, env=env)
                cfg._apply_env(tuple(known_sections) + (COMMON_SECTION, DRUID_SECTION))
            elif embedded_default:
                parser.read_string(EMBEDDED_DEFAULT, source=EMBEDDED_NAME)
                cfg = cls(parser=parser, path=EMBEDDED_NAME, env=env)
                cfg._apply_env(tuple(known_sections) + (COMMON_SECTION, DRUID_SECTION))
            else:
                raise ConfigError(
                    f"no configuration found: no config path given, ${ENV_CONFIG} not set, "
                    f"no {Path(DEFAULT_FILE).resolve()}, and no {ENV_PREFIX}<SECTION>_<KEY> variable "
                    f"for a provider section; pass the path of the deployment's config.ini")
        cfg.check_numbers()
        return cfg

    def _read_file(self, p: Path) -> None:
        where = self.path
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise ConfigError("config file not found", path=where) from None
        except OSError as e:
            raise ConfigError(f"cannot read config file: {e.strerror}", path=where) from None
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError("is a directory, not a config file", path=where)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would wait forever for a writer
            raise ConfigError("is not a regular file (a FIFO, socket or device?), not a config file", path=where)
        try:
            text = _read_regular(p).decode("utf-8-sig")  # a leading byte-order mark is not part of the text
        except PermissionError:
            raise ConfigError("config file is not readable (permission denied)", path=where) from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file is not UTF-8 text (byte {e.start})", path=where) from None
        except OSError as e:
            raise ConfigError(f"cannot read config file: {e.strerror}", path=where) from None
        try:
            self.parser.read_string(text, source=where)
        except configparser.DuplicateSectionError as e:
            raise ConfigError(f"line {e.lineno}: section [{e.section}] appears twice", path=where) from None
        except configparser.DuplicateOptionError as e:
            raise ConfigError(f"line {e.lineno}: key appears twice", path=where, section=e.section, key=e.option) from None
        except configparser.MissingSectionHeaderError as e:
            raise ConfigError(f"line {e.lineno}: no valid [SECTION] header before this line (missing or malformed header)", path=where) from None
        except configparser.ParsingError as e:
            lines = ", ".join(str(n) for n, _ in e.errors[:5])
            raise ConfigError(f"malformed INI at line {lines}", path=where) from None

    def _apply_env(self, sections, known=()) -> None:
        """Take ``ML_ANALYTICS_<SECTION>_<KEY>`` values for ``sections``; note those naming another
        ``known`` section (the file lacks it) in :attr:`ignored_env`."""
        present = {s.upper(): s for s in self.parser.sections()}
        for var, value in sorted(self.env.items()):
            if not value.strip():
                continue  # an empty value counts as unset, in the environment as in the file
            found = _env_key(var, sections)
            if found is None:
                if _env_key(var, known):
                    self.ignored_env.append(var)
                continue
            section, key = found
            real = present.get(section.upper(), section)
            if self.parser.has_option(real, key) and self.parser.get(real, key, raw=True).strip():
                self.replaced_env.append((var, real, key))
            self._env_values[(real, key)] = value

    def notices(self) -> list[str]:
        """What a run should say once about where values came from: variables that replaced file values."""
        return [f"${var} replaces [{section}] {key} from {self.path}" for var, section, key in self.replaced_env]

    def check_numbers(self) -> None:
        """Every number [COMMON] may hold is checked now, whether or not a provider reads it."""
        for key in COMMON_NUMBERS:
            if (COMMON_SECTION, key) in self._env_values or self.parser.has_option(COMMON_SECTION, key):
                if _PLACEHOLDER.search(self._raw(COMMON_SECTION, key)):
                    continue  # unrendered: reported by name when the value is read
                self.number(COMMON_SECTION, key)

    @property
    def folder(self) -> Path:
        """The folder relative paths in the config are resolved against: the file's, else the working folder."""
        if self.path in (EMBEDDED_NAME, ENVIRONMENT_NAME):
            return Path.cwd()
        return Path(self.path).resolve().parent

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

    def number(self, section: str, key: str, *, whole: bool | None = None, minimum: float | None = None,
               above: float | None = None, maximum: float | None = None) -> int | float | None:
        """A number from the config (None when unset), within bounds; anything else (not a number,
        nan, inf, out of range) is a ConfigError naming the file, section and key.

        Keys of :data:`COMMON_NUMBERS` take their rule from there unless an argument says otherwise;
        other keys default to a whole number from 0 to 10**6.
        """
        rule = COMMON_NUMBERS.get(key.lower(), _DEFAULT_RULE) if section == COMMON_SECTION else _DEFAULT_RULE
        whole = rule.whole if whole is None else whole
        if minimum is None and above is None:
            minimum, above = rule.minimum, rule.above
        maximum = rule.maximum if maximum is None else maximum
        raw = self.get(section, key)
        if raw is None:
            return None

        def refuse(why: str) -> ConfigError:
            return ConfigError(why, path=self.path, section=section, key=key)

        try:
            value = int(raw) if whole else float(raw)
        except ValueError:
            raise refuse(f"expected a {'whole number' if whole else 'number'}, got {raw!r}") from None
        if not math.isfinite(value):
            raise refuse(f"expected a finite number, got {raw!r}")
        unit = f" {rule.unit}" if rule.unit else ""
        if minimum is not None and value < minimum:
            raise refuse(f"must be at least {minimum:g}{unit}, got {raw!r}")
        if above is not None and value <= above:
            raise refuse(f"must be greater than {above:g}{unit}, got {raw!r}")
        if value > maximum:
            raise refuse(f"must be at most {maximum:g}{unit}, got {raw!r}")
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

    def secrets(self, secret_keys: dict[str, set[str]] | None = None,
                path_keys: dict[str, set[str]] | None = None) -> set[str]:
        """Every value that must never be printed: declared secret keys plus secret-looking names.

        Keys declared as file paths (``path_keys``, e.g. ``[GCP] secret_data``) are not secrets even
        when their name looks like one: a path is what an error must show. Both the raw and the
        interpolated value count, so ``${COMMON:key}`` indirections are covered.
        """
        found = set()
        secret_keys = secret_keys or {}
        path_keys = path_keys or {}
        for section in self.sections():
            for key in self.raw_keys(section):
                declared = key in secret_keys.get(section, set())
                if declared or (looks_secret(key) and key not in path_keys.get(section, set())):
                    found.add(self._raw(section, key))
                    try:
                        found.add((self.parser.get(section, key) if self.parser.has_option(section, key) else "").strip())
                    except configparser.Error:
                        pass
        return {s for s in found if s}

    def permission_warning(self) -> str | None:
        """A warning when a config file holding credentials can be read by other users."""
        if self.path in (EMBEDDED_NAME, ENVIRONMENT_NAME) or sys.platform == "win32":
            return None
        try:
            mode = Path(self.path).stat().st_mode
        except OSError:
            return None
        if mode & (stat.S_IRGRP | stat.S_IROTH) and self.secrets():
            return (f"{self.path}: holds credentials and is readable by other users "
                    f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {self.path}")
        return None


def describe_source(config: Config) -> str:
    """One short phrase saying which configuration is in use (the CLI prints it on stderr)."""
    if config.path == EMBEDDED_NAME:
        root = config.get("LOCAL", "root") or "./cloud-storage"
        return f"embedded default ([LOCAL] {Path(root).resolve()}); no config file found"
    if config.path == ENVIRONMENT_NAME:
        return f"{ENV_PREFIX}* environment variables (no config file)"
    return config.path
