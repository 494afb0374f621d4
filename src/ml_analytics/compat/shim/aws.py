# Written by ml-analytics compat install @VERSION@ for release @RELEASE@; re-run it to upgrade, do not edit.
"""The seed's AWS class: uploads through ml-analytics' [AWS] provider. Standard library only."""

try:
    from _ml_analytics_runner import CloudUploadError, upload_with
except ImportError:  # imported as part of a package
    from ._ml_analytics_runner import CloudUploadError, upload_with

__all__ = ["AWS", "CloudUploadError"]


class AWS(object):
    def __init__(self, accessKey, secretAccessKey, regionName, bucketName):  # noqa: N803 (seed names)
        self._settings = {"access_key": accessKey, "secret_access_key": secretAccessKey,
                          "region_name": regionName, "bucket_name": bucketName}
        self.bucket_name = bucketName

    def upload_files(self, bucketPath, localPath, fileName):  # noqa: N803
        return upload_with("AWS", self._settings, bucketPath, localPath, fileName)
