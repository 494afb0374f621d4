"""Storage providers: one module per cloud, found through the registry.

``from ml_analytics.cloud_storage import MultiCloud`` is the seed's entry point; provider classes
live in their own modules (``aws.AWS``, ``oracle.Oracle``, ``ms_azure.MSAzure``, ``gcp.GCP``,
``local.Local``, ``s3.S3``) and are imported only when used.
"""

from .base import CloudProvider, ObjectInfo, Option, StoredObject
from .cloud import MultiCloud
from .registry import ENTRY_POINT_GROUP, get_provider_class, registry

__all__ = ["CloudProvider", "ObjectInfo", "Option", "StoredObject", "MultiCloud", "ENTRY_POINT_GROUP",
           "get_provider_class", "registry"]
