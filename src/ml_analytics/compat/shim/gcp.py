# Written by ml-analytics compat install @VERSION@ for release @RELEASE@; re-run it to upgrade, do not edit.
"""The seed's GCP class: uploads through ml-analytics' [GCP] provider. Standard library only."""

import os

try:
    from _ml_analytics_runner import CloudUploadError, upload_with
except ImportError:  # imported as part of a package
    from ._ml_analytics_runner import CloudUploadError, upload_with

__all__ = ["GCP", "CloudUploadError"]


class GCP(object):
    def __init__(self, secret_data, bucketName):  # noqa: N803 (seed names)
        # A relative key file is relative to the working directory, as the original read it.
        self.secret_data = os.path.abspath(secret_data) if secret_data else secret_data
        self._settings = {"secret_data": self.secret_data, "bucket_name": bucketName}

    def upload_files(self, blobPath, localPath, fileName):  # noqa: N803
        return upload_with("GCP", self._settings, blobPath, localPath, fileName)
