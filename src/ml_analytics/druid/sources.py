"""Druid's ``inputSource`` for objects in a store: built here, from what the provider says of itself.

Providers know nothing of Druid. A provider that declares
:class:`~ml_analytics.cloud_storage.capabilities.Locatable` describes where its objects live (a
:class:`~ml_analytics.cloud_storage.capabilities.StoreLocation`: kind, bucket, endpoint, region,
addressing, account, folder); this module turns that into the input source Druid reads:

==========  ==============================================================================================
``s3``      ``s3`` with ``uris``; for an endpoint Druid does not know (OCI, MinIO, SeaweedFS, ...) also
            ``endpointConfig`` (url, signing region), ``clientConfig`` (protocol, path-style addressing,
            no chunked encoding where the store refuses it) and an empty ``properties``: Druid's S3
            extension ignores the first two unless ``properties`` is present (checked on 29.0.0), and an
            empty one keeps Druid's own credentials, so no key ever goes into a spec.
``azure``   ``azureStorage`` (Druid >= 30: ``azureStorage://ACCOUNT/CONTAINER/KEY``) or ``azure``
            (older: ``azure://CONTAINER/KEY``), as ``[DRUID] azure_input_source`` or the spec says.
``gcs``     ``google`` with ``gs://BUCKET/KEY``.
``file``    ``local`` with the objects' file paths.
==========  ==============================================================================================

A provider that declares :class:`~ml_analytics.cloud_storage.capabilities.SignedUrls` (and is not
Locatable, or when ``--input-source http`` asks) gets Druid's ``http`` input source with pre-signed URLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..cloud_storage.capabilities import Locatable, SignedUrls, StoreLocation
from ..errors import UsageError

AZURE_SOURCES = ("azureStorage", "azure")


def signed_source(provider, keys: Sequence[str]) -> dict:
    if not provider.can(SignedUrls):
        raise UsageError(f"{provider.section} cannot make pre-signed URLs for Druid's http input source")
    return {"type": "http", "uris": [provider.sign_url(k) for k in keys]}


def from_location(loc: StoreLocation, keys: Sequence[str], *, azure_input_source: str = "azureStorage") -> dict:
    """The input source reading ``keys`` of the store ``loc`` describes."""
    if loc.kind == "file":
        return {"type": "local", "files": [str(Path(loc.root).joinpath(*k.split("/"))) for k in keys]}
    if loc.kind == "s3":
        source: dict = {"type": "s3", "uris": [f"s3://{loc.bucket}/{k}" for k in keys]}
        if loc.endpoint:
            parts = urlsplit(loc.endpoint)
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))  # never a URL's password
            source["endpointConfig"] = {"url": url, "signingRegion": loc.region or "us-east-1"}
            source["clientConfig"] = {"protocol": urlsplit(url).scheme or "https",
                                      "enablePathStyleAccess": loc.path_style,
                                      "disableChunkedEncoding": not loc.chunked_encoding}
            source["properties"] = {}
        return source
    if loc.kind == "azure":
        if azure_input_source == "azure":
            return {"type": "azure", "uris": [f"azure://{loc.bucket}/{k}" for k in keys]}
        return {"type": "azureStorage", "uris": [f"azureStorage://{loc.account}/{loc.bucket}/{k}" for k in keys]}
    if loc.kind == "gcs":
        return {"type": "google", "uris": [f"gs://{loc.bucket}/{k}" for k in keys]}
    raise UsageError(f"Druid has no input source for a {loc.kind!r} store")


def input_source(provider, keys: Sequence[str], *, mode: str = "native", azure_input_source: str = "azureStorage") -> dict:
    """The input source Druid reads ``keys`` of ``provider`` with (``mode``: native or http)."""
    if mode == "http":
        return signed_source(provider, keys)
    if provider.can(Locatable):
        return from_location(provider.location(), keys, azure_input_source=azure_input_source)
    if provider.can(SignedUrls):
        return signed_source(provider, keys)
    raise UsageError(f"[{provider.section}] cannot tell Druid where its objects are: it declares neither the "
                     f"Locatable nor the SignedUrls capability")
