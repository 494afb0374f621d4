"""One typed error family for the whole project.

Every error a user can cause or meet carries a one-line message that names the file, section,
key, provider or bucket at fault, and an exit code (2 for usage and configuration mistakes,
1 for failed transfers). Messages never contain credential values: provider code builds them
from names, and anything taken from a library exception passes through :func:`redact` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Credential-shaped fragments that libraries like to put into exception text (signed URLs,
# connection strings, Authorization headers, key files). Known secret values are removed too.
_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(sig|x-amz-signature|x-amz-credential|x-amz-security-token|signature|x-goog-signature"
                r"|x-goog-credential)=[^&\s'\"]+"), r"\1=***"),
    (re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey|password)=[^;&\s'\"]+"), r"\1=***"),
    (re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n,}]+"), r"\1***"),
    (re.compile(r"(?i)(\"private_key\"\s*:\s*\")[^\"]+"), r"\1***"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"), "***"),
]
MASK = "***"
# user:password@ in any URL (endpoint_url, batch_url, ...): the whole userinfo goes, whatever scheme.
# With a password, up to the last @ of the URL: a password holding '/', '#', '?' or '@' typed raw
# (not percent-encoded) is still masked whole, at the price of masking a path that holds an '@'.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)(?:[^\s'\"<>@/]*:[^\s'\"<>]*@|[^\s'\"<>@/?#]+@)")
_TRIGGERS = ("sig=", "signature=", "credential=", "security-token=", "accountkey=", "sharedaccess", "password=",
             "authorization", "private_key", "private key")


def redact_userinfo(text: str) -> str:
    """``scheme://user:password@host`` -> ``scheme://***@host`` everywhere in ``text``."""
    return _URL_USERINFO.sub(r"\1***@", text) if "@" in text else text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with known secret values, URL passwords and credential-shaped fragments masked."""
    text = redact_userinfo(text)
    for value in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        if value in text:
            text = _mask(text, value)
    low = text.lower()
    if any(t in low for t in _TRIGGERS):  # the patterns below only match where one of these occurs
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
    return text


# A credential this long is masked wherever it occurs; a shorter value (an access key such as ``minio``)
# also occurs by chance in ordinary text, and is masked only where it stands alone.
ALWAYS_MASKED_LENGTH = 16


def _mask(text: str, value: str) -> str:
    """``text`` with ``value`` masked. A value shorter than :data:`ALWAYS_MASKED_LENGTH` is left where it is
    not the value standing alone: inside a longer word (``data`` in ``metadata``) or inside a local file
    path (``/tmp/data/r.json``), the name of a file a message must show."""
    if len(value) >= ALWAYS_MASKED_LENGTH:
        return text.replace(value, MASK)
    out, start = [], 0
    for m in re.finditer(re.escape(value), text):
        s, e = m.span()
        inside_word = ((s > 0 and text[s - 1].isalnum() and value[0].isalnum())
                       or (e < len(text) and text[e].isalnum() and value[-1].isalnum()))
        if inside_word or _in_local_path(text, s, e):
            continue
        out += [text[start:s], MASK]
        start = e
    return "".join(out) + text[start:] if out else text


_TOKEN_END = " \t\r\n'\"<>,;()[]{}"


def _in_local_path(text: str, s: int, e: int) -> bool:
    """Whether text[s:e] lies inside a file path (``/…``, ``./…``, ``~/…``, ``file:///…``): never another
    URL, a query string or a ``key=value`` pair, where credentials travel."""
    begin = s
    while begin > 0 and text[begin - 1] not in _TOKEN_END:
        begin -= 1
    end = e
    while end < len(text) and text[end] not in _TOKEN_END:
        end += 1
    token = text[begin:end].rstrip(":.")
    if e > begin + len(token):
        return False
    if token.startswith("file:///"):  # a LOCAL store's URI is a path too
        token = token[len("file://"):]
    if not token.startswith(("/", "./", "../", "~/")) or token.startswith("//"):
        return False
    return not any(c in token for c in ("://", "?", "=", "@", "&", "%"))


def one_line(text: str, limit: int = 400) -> str:
    """Collapse a (library) message to one readable line."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class MLAnalyticsError(Exception):
    """Base of every error this project raises on purpose. Its message never holds a URL's password."""

    exit_code = EXIT_FAILED
    retryable = False  # a transient failure that a later attempt may get past

    def __init__(self, *args):
        if args and isinstance(args[0], str):
            args = (redact_userinfo(args[0]), *args[1:])
        super().__init__(*args)


class UsageError(MLAnalyticsError):
    """The command line asked for something that cannot be done (unknown section, bad path)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The configuration is unreadable, incomplete or inconsistent. Names file, section and key."""

    def __init__(self, message: str, *, path: str | None = None, section: str | None = None, key: str | None = None):
        where = []
        if path:
            where.append(str(path))
        if section:
            where.append(f"[{section}]" + (f" {key}" if key else ""))
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path, self.section, self.key, self.detail = path, section, key, message


class ProviderNotInstalledError(ConfigError):
    """A configured provider needs an optional extra that is not installed."""


class InvalidKeyError(UsageError):
    """An object key (bucketPath + fileName) breaks the key rule."""


class LocalFileError(UsageError):
    """A local path to upload is missing, unreadable, or not a regular file."""


class StorageError(MLAnalyticsError):
    """A store refused or failed an operation. ``kind`` is one short, stable word."""

    kind = "storage"
    retryable = False

    def __init__(self, message: str, *, provider: str = "", bucket: str = "", key: str = ""):
        where = provider + (f" bucket '{bucket}'" if bucket else "") + (f" key '{key}'" if key else "")
        super().__init__(f"{where}: {message}" if where else message)
        self.provider, self.bucket, self.key, self.detail = provider, bucket, key, message


class AuthenticationError(StorageError):
    kind = "authentication"


class PermissionDeniedError(StorageError):
    kind = "permission"


class BucketNotFoundError(StorageError):
    kind = "bucket-not-found"


class ObjectNotFoundError(StorageError):
    kind = "not-found"


class NetworkError(StorageError):
    kind = "network"
    retryable = True


class TransientError(StorageError):
    kind = "transient"
    retryable = True


class IntegrityError(StorageError):
    """What was stored does not match what was read, or the source changed while it was read."""

    kind = "integrity"


class NotSupportedError(StorageError):
    """The store cannot do this at all (a provider declares it in ``cannot``); never retried."""

    kind = "not-supported"


class ConflictError(StorageError):
    """The store refused because of another writer or the object's state (HTTP 409)."""

    kind = "conflict"


class PreconditionFailedError(StorageError):
    """A conditional request (If-Match, If-None-Match, ifGenerationMatch) found the object changed (HTTP 412)."""

    kind = "precondition"


class AlreadyExistsError(PreconditionFailedError):
    """A create-only write found the key taken."""

    kind = "exists"


# -- what an answer means ----------------------------------------------------------------------------
# The one table from an HTTP status (or no answer at all) to this project's typed errors. Whether a
# failure is retried is the error class's ``retryable``: changing the retry policy for a status is
# changing its line here. Every HTTP path (the stores' upload requests, GCS sessions, the Druid
# client) and every provider's SDK mapping read it through :func:`error_class`; providers only refine
# a status with the store's own error code (``NoSuchBucket`` is a 404 that means the bucket).
STATUS_ERRORS: dict[int, type[StorageError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: ObjectNotFoundError,
    408: TransientError,
    409: ConflictError,
    412: PreconditionFailedError,
    429: TransientError,
}
SERVER_ERROR: type[StorageError] = TransientError  # any 5xx
NO_ANSWER: type[StorageError] = NetworkError  # refused, reset, timed out, not an HTTP answer


def error_class(status: int | None) -> type[StorageError]:
    """The typed error an HTTP ``status`` (None: no answer) stands for."""
    if status is None:
        return NO_ANSWER
    found = STATUS_ERRORS.get(status)
    if found is not None:
        return found
    return SERVER_ERROR if 500 <= status <= 599 else StorageError


# How a provider's message starts for each kind of failure (the store's own words follow in brackets).
PHRASES: dict[type, str] = {
    AuthenticationError: "wrong credentials",
    PermissionDeniedError: "permission denied",
    BucketNotFoundError: "bucket does not exist",
    ObjectNotFoundError: "no such object",
    IntegrityError: "the store rejected the body as corrupted",
    TransientError: "store kept failing after retries",
    ConflictError: "refused because of another writer",
    PreconditionFailedError: "the object changed meanwhile",
}


def storage_error(cls: type[StorageError], summary: str, *, where: str = "", **kw) -> StorageError:
    """``cls`` with the project's phrase for it and the store's own words: ``wrong credentials (403 ...)``;
    a NetworkError says ``cannot reach WHERE (...)``."""
    if issubclass(cls, NetworkError):
        return cls(f"cannot reach {where or 'the store'} ({summary})", **kw)
    phrase = next((text for kind, text in PHRASES.items() if issubclass(cls, kind)), None)
    return cls(f"{phrase} ({summary})" if phrase else summary, **kw)


def transient_status(status: int | None) -> bool:
    """True when a request that got ``status`` (None: no answer) may succeed if sent again."""
    return error_class(status).retryable


class UploadFailedError(MLAnalyticsError):
    """Raised by MultiCloud after trying every provider when at least one failed."""

    def __init__(self, results):
        self.results = list(results)
        failed = [r for r in self.results if r.status == "failed"]
        lines = "; ".join(f"{r.provider} {r.key}: {r.error}" for r in failed[:5])
        more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} of {len(self.results)} uploads failed: {lines}{more}")
