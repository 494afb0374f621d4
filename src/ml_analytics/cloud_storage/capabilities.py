"""What a provider may do beyond the core contract, each as a small protocol.

The core (:class:`~.base.CloudProvider`) is ``put_file``, ``put_bytes``, ``stat``, ``list``,
``delete`` and ``uri``: enough for uploads, ``--skip-existing``, ``check`` and clean-up. A provider
that can do more says so in its class::

    class MyCloud(CloudProvider):
        capabilities = frozenset({ReadBack, SignedUrls})

and implements those protocols' methods. The registry checks the declaration once, when the class is
registered (a declared capability whose methods are missing makes the provider broken, with the
reason); everyone else asks ``provider.can(ReadBack)`` and never probes a provider with ``getattr``,
``hasattr`` or ``isinstance`` on a concrete class.

Who uses which:

=====================  =============================================================================
``ReadBack``           Spark reads manifests back; ``ingest --manifest`` reads them from the store.
``StreamUpload``       Spark sends a partition while it is being serialized (else: spooled, ``put_file``).
``SignedUrls``         Druid's ``http`` input source (pre-signed GET URLs).
``Locatable``          Druid's native input sources, built in ``druid/`` from a :class:`StoreLocation`.
``Multipart``          the engine sizes part buffers and parts in flight per run (memory cap).
``BatchCleanup``       the engine calls it after a batch (S3: abort orphaned multipart uploads).
``CreateOnly``         Spark claims a run id and writes its manifest only where nothing is (atomically).
``PrefixCleanup``      Spark (and ``cleanup --run``) drop every unfinished upload under a run it owns.
=====================  =============================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .base import StoredObject


@dataclass(frozen=True)
class StoreLocation:
    """Where a provider's objects live, described without any reader's format.

    ``kind``: ``s3`` (any S3 API), ``azure``, ``gcs`` or ``file``. ``bucket`` is the bucket or
    container; ``endpoint`` the API endpoint a reader must be told about (None where every client
    knows it: AWS, Azure's and Google's own), never with a password; ``path_style`` whether the
    bucket goes in the path; ``account`` the Azure storage account; ``root`` the folder holding the
    objects (``file``)."""

    kind: str
    bucket: str
    endpoint: str | None = None
    region: str | None = None
    path_style: bool = False
    account: str | None = None
    root: str | None = None
    chunked_encoding: bool = True  # False: the store refuses aws-chunked bodies (OCI)


@runtime_checkable
class ReadBack(Protocol):
    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; :class:`~ml_analytics.errors.ObjectNotFoundError` if there is none."""


@runtime_checkable
class StreamUpload(Protocol):
    def put_stream(self, chunks: Iterable[bytes], key: str) -> "StoredObject":
        """Store the bytes of ``chunks`` (an iterator that may raise: then nothing is stored and the key
        keeps what it held). ``md5`` of the result may be None."""


@runtime_checkable
class SignedUrls(Protocol):
    def sign_url(self, key: str, expires_seconds: int = 6 * 3600) -> str:
        """A URL anyone can GET the object with, for ``expires_seconds``."""


@runtime_checkable
class Locatable(Protocol):
    def location(self) -> StoreLocation:
        """Where this provider's objects live (see :class:`StoreLocation`)."""


@runtime_checkable
class Multipart(Protocol):
    default_part_concurrency: int

    def part_size_for(self, size: int) -> int:
        """The part size an upload of ``size`` bytes uses (also to recompute multipart ETags)."""

    def buffer_bytes(self, size: int, parts_in_flight: int | None = None) -> int:
        """Memory an upload of ``size`` bytes holds at once with ``parts_in_flight`` parts in flight."""

    def put_file(self, path: Any, key: str, *, parts_in_flight: int | None = None) -> "StoredObject":
        """``put_file`` with this run's number of parts in flight (None: the provider's own)."""


@runtime_checkable
class BatchCleanup(Protocol):
    def finish_batch(self, big_items: list, since: float, failed_keys: frozenset | set = frozenset()) -> int:
        """After a batch that sent ``big_items`` (planned files) since ``since`` (epoch seconds): clean up
        what uploads of them may have left open. Returns how many things were cleaned up."""


@runtime_checkable
class CreateOnly(Protocol):
    def put_bytes_new(self, data: bytes, key: str) -> "StoredObject":
        """Store ``data`` at ``key`` only if nothing is there, atomically (the store decides: S3
        ``If-None-Match: *``, Azure ``If-None-Match: *``, GCS ``ifGenerationMatch=0``, a hard link on a
        folder). Raises :class:`~ml_analytics.errors.AlreadyExistsError` when the key is taken."""


@runtime_checkable
class PrefixCleanup(Protocol):
    def abort_uploads_under(self, prefix: str) -> int:
        """Drop every unfinished upload under ``prefix`` whatever its age (open multipart uploads, uncommitted
        blocks, temporaries): the caller owns the prefix. Returns how many were dropped."""


ALL = (ReadBack, StreamUpload, SignedUrls, Locatable, Multipart, BatchCleanup, CreateOnly, PrefixCleanup)


def members(capability: type) -> tuple[str, ...]:
    """The methods and attributes a capability protocol asks for."""
    names = [n for n, v in vars(capability).items() if not n.startswith("_") and (callable(v) or n == "__call__")]
    names += [n for n in getattr(capability, "__annotations__", {}) if not n.startswith("_")]
    return tuple(dict.fromkeys(names))


def missing_members(cls: type, capability: type) -> list[str]:
    """What ``cls`` lacks of ``capability`` (a method it only inherits from the protocol stub counts as missing)."""
    lacking = []
    for name in members(capability):
        found = getattr(cls, name, None)
        if found is None or found is vars(capability).get(name):
            lacking.append(name)
    return lacking


__all__ = ["StoreLocation", "ReadBack", "StreamUpload", "SignedUrls", "Locatable", "Multipart", "BatchCleanup",
           "CreateOnly", "PrefixCleanup", "ALL", "members", "missing_members"]
