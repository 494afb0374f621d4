"""Storage providers: one module per cloud, found through the registry's table.

``from ml_analytics.cloud_storage import MultiCloud`` is the seed's entry point (imported on first
use: it runs the transfer engine, which sits above the providers). Provider classes live in their own
modules (``aws.AWS``, ``oracle.Oracle``, ``ms_azure.MSAzure``, ``gcp.GCP``, ``local.Local``,
``s3.S3``) and are imported only when used.
"""

from .base import CloudProvider, ObjectInfo, Option, ProviderSettings, StoredObject
from .capabilities import StoreLocation
from .registry import ENTRY_POINT_GROUP, get_provider_class, registry

__all__ = ["CloudProvider", "ObjectInfo", "Option", "ProviderSettings", "StoredObject", "StoreLocation",
           "MultiCloud", "ENTRY_POINT_GROUP", "get_provider_class", "registry"]


def __getattr__(name: str):
    if name == "MultiCloud":  # the seed's facade (engine layer), imported on first use
        from .cloud import MultiCloud

        return MultiCloud
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
