"""AWS: Amazon S3. The shared S3 implementation (``s3.py``) with AWS's quirks.

Keys from ``[AWS]`` or, when both are empty, the standard AWS credential chain (environment,
shared profile, instance or container role) through boto3. The seed's constructor still works:
``AWS(accessKey=, secretAccessKey=, regionName=, bucketName=)``.
"""

from __future__ import annotations

from .base import Option
from .s3 import QUIRKS, S3, s3_options


class AWS(S3):
    section = "AWS"
    description = "Amazon S3."
    extra = "aws"
    quirks = QUIRKS["AWS"]
    options = s3_options(endpoint_required=False, keys_required=False, addressing=True,
                         extra=(Option("service_name", "legacy key, accepted and ignored", arg="service_name"),))
