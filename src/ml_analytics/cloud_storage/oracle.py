"""ORACLE: OCI Object Storage through its Amazon S3 Compatibility API.

The shared S3 implementation (``s3.py``) with OCI's quirks: path-style addressing only, no
``aws-chunked`` streaming signatures, no CRC32 checksums (SHA256 is sent and checked), and an
endpoint of the form ``https://NAMESPACE.compat.objectstorage.REGION.oraclecloud.com`` (give
``endpoint_url``, or ``namespace`` and ``region_name`` to have it built). The seed's
constructor still works: ``Oracle(regionName=, accessKey=, secretAccessKey=, endpoint_url=, bucketName=)``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Option
from .s3 import QUIRKS, S3, s3_options

OCI_ENDPOINT = "https://{namespace}.compat.objectstorage.{region}.oraclecloud.com"


class Oracle(S3):
    section = "ORACLE"
    description = "Oracle Cloud (OCI) Object Storage, S3 Compatibility API."
    extra = "oracle"
    quirks = QUIRKS["ORACLE"]
    options = tuple(
        Option(o.name, o.help + " (or give namespace + region_name)", arg=o.arg, kind="url") if o.name == "endpoint_url"
        else o
        for o in s3_options(endpoint_required=False, keys_required=True, addressing=False,
                            extra=(Option("namespace", "OCI tenancy namespace, to build endpoint_url",
                                          arg="namespace"),)))

    def __init__(self, regionName: str | None = None, accessKey: str | None = None,  # noqa: N803 (seed names)
                 secretAccessKey: str | None = None, endpoint_url: str | None = None, bucketName: str | None = None,
                 namespace: str | None = None, **kwargs: Any):
        if not endpoint_url:
            if not (namespace and regionName):
                raise ConfigError("endpoint_url is required (or namespace and region_name)", section=self.section,
                                  key="endpoint_url")
            endpoint_url = OCI_ENDPOINT.format(namespace=namespace, region=regionName)
        super().__init__(accessKey=accessKey, secretAccessKey=secretAccessKey, regionName=regionName,
                         bucketName=bucketName, endpoint_url=endpoint_url, **kwargs)
