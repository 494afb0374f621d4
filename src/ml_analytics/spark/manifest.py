"""The commit mark of a run: ``PREFIX/RUN_ID/_manifest.json``.

A run's objects are trusted only through its manifest: written by the driver after every
partition succeeded and every object was checked against the store, it lists each object's key,
partition, rows, bytes and checksums of the stored bytes (gzip included): CRC-64/NVME always, MD5 for
partitions sent in one request (a partition streamed in parts is not MD5'd: that cost the executors
more CPU than anything else but the JSON itself). A folder without a manifest
is an unfinished or failed run (see :mod:`.removal`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

from ..cloud_storage.capabilities import ReadBack
from ..errors import MLAnalyticsError, ObjectNotFoundError, StorageError, UsageError, one_line

MANIFEST_NAME = "_manifest.json"
FORMAT = "ml-analytics-manifest/2"
FORMATS = ("ml-analytics-manifest/1", FORMAT)  # /1: every object had an md5 and no crc64nvme


@dataclass(frozen=True)
class ManifestObject:
    key: str
    partition: int
    rows: int
    bytes: int
    md5: str | None  # of the stored bytes; None for a partition streamed in parts (its crc64nvme says it)
    crc64nvme: str | None = None  # hex CRC-64/NVME of the stored bytes


@dataclass
class Manifest:
    run_id: str
    run: str  # the run's folder: PREFIX/RUN_ID
    objects: list[ManifestObject]
    uris: dict[str, str] = field(default_factory=dict)  # provider section -> the manifest's URI there
    compression: str | None = None
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.run}/{MANIFEST_NAME}"

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.objects)

    @property
    def bytes(self) -> int:
        return sum(o.bytes for o in self.objects)

    @property
    def keys(self) -> list[str]:
        return [o.key for o in self.objects]

    @property
    def uri(self) -> str | None:
        """The manifest's URI in the first provider (every provider holds the same manifest)."""
        return next(iter(self.uris.values()), None)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "run_id": self.run_id, "run": self.run, "created": self.created,
                "content": "ndjson", "compression": self.compression, "rows": self.rows, "bytes": self.bytes,
                "providers": self.uris, "objects": [asdict(o) for o in self.objects]}

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, text: bytes | str, where: str = "manifest") -> "Manifest":
        try:
            doc = json.loads(text)
            if doc.get("format") not in FORMATS:
                raise ValueError(f"format is {doc.get('format')!r}, expected one of {', '.join(FORMATS)}")
            objects = [ManifestObject(str(o["key"]), int(o["partition"]), int(o["rows"]), int(o["bytes"]),
                                      str(o["md5"]) if o.get("md5") else None, o.get("crc64nvme") or None)
                       for o in doc["objects"]]
            manifest = cls(str(doc["run_id"]), str(doc["run"]), objects, dict(doc.get("providers") or {}),
                           doc.get("compression"), str(doc.get("created") or ""))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise UsageError(f"{where}: not an ml-analytics manifest ({one_line(e, 160)})") from None
        if doc.get("rows") is not None and int(doc["rows"]) != manifest.rows:
            raise UsageError(f"{where}: rows {doc['rows']} differ from the sum over its objects ({manifest.rows})")
        return manifest


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- reading objects back ---------------------------------------------------------------------
def read_object(provider, key: str) -> bytes:
    """A (small) object's bytes, through the provider's ReadBack capability."""
    if not provider.can(ReadBack):
        raise StorageError("cannot read objects back from this provider (it does not declare ReadBack)",
                           provider=provider.section, key=key)
    with provider.translating_errors(key):
        return provider.get_bytes(key)


def locate(uri: str, mc) -> tuple[str, object, str]:
    """(section, provider, key) of the configured provider that holds ``uri``."""
    for section, provider in mc.providers().items():
        key = provider.key_for_uri(uri)
        if key:
            return section, provider, unquote(key) if uri.startswith("file:") else key
    raise UsageError(f"no configured provider holds {uri}; configured: "
                     + ", ".join(p.uri("") for p in mc.providers().values()))


def read_manifest(source, *, config=None) -> "Manifest":
    """A manifest from a Manifest, a provider URI (``s3://…/_manifest.json``), a ``file://`` URI or a path."""
    if isinstance(source, Manifest):
        return source
    text = str(source)
    scheme = urlsplit(text).scheme
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        path = unquote(urlsplit(text).path) if scheme == "file" else text
        if os.path.isdir(path):
            path = os.path.join(path, MANIFEST_NAME)
        try:
            with open(path, "rb") as fh:
                return Manifest.from_json(fh.read(), text)
        except FileNotFoundError:
            raise UsageError(f"{text}: no such manifest (a run without _manifest.json did not finish)") from None
        except OSError as e:
            raise UsageError(f"{text}: cannot read: {e.strerror}") from None
    from .shipping import open_multicloud

    mc = open_multicloud(config)
    try:
        if not text.endswith(MANIFEST_NAME):
            text = text.rstrip("/") + "/" + MANIFEST_NAME
        _, provider, key = locate(text, mc)
        try:
            return Manifest.from_json(read_object(provider, key), text)
        except ObjectNotFoundError:
            raise UsageError(f"{text}: no such manifest (a run without _manifest.json did not finish)") from None
        except MLAnalyticsError:
            raise
    finally:
        if mc is not config:
            mc.close()
