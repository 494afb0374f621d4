# Written by ml-analytics compat install @VERSION@ for release @RELEASE@; re-run it to upgrade, do not edit.
"""The seed's Oracle class: uploads through ml-analytics' [ORACLE] provider. Standard library only."""

try:
    from _ml_analytics_runner import CloudUploadError, upload_with
except ImportError:  # imported as part of a package
    from ._ml_analytics_runner import CloudUploadError, upload_with

__all__ = ["Oracle", "CloudUploadError"]


class Oracle(object):
    def __init__(self, regionName, accessKey, secretAccessKey, endpoint_url, bucketName):  # noqa: N803 (seed names)
        self._settings = {"region_name": regionName, "access_key": accessKey,
                          "secret_access_key": secretAccessKey, "endpoint_url": endpoint_url,
                          "bucket_name": bucketName}
        self.bucket = bucketName

    def upload_files(self, bucketPath, localPath, fileName):  # noqa: N803
        return upload_with("ORACLE", self._settings, bucketPath, localPath, fileName)
