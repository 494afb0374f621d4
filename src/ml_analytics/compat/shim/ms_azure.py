# Written by ml-analytics compat install @VERSION@ for release @RELEASE@; re-run it to upgrade, do not edit.
"""The seed's MSAzure class: uploads through ml-analytics' [AZURE] provider. Standard library only."""

try:
    from _ml_analytics_runner import CloudUploadError, upload_with
except ImportError:  # imported as part of a package
    from ._ml_analytics_runner import CloudUploadError, upload_with

__all__ = ["MSAzure", "CloudUploadError"]


class MSAzure(object):
    def __init__(self, accountName, sasToken, containerName, accountKey):  # noqa: N803 (seed names)
        # As in the original, a SAS token wins over an account key when both are given.
        self._settings = {"account_name": accountName, "container_name": containerName,
                          "sas_token": sasToken or None, "account_key": None if sasToken else accountKey}
        self.container_name = containerName

    def upload_files(self, blobPath, localPath, fileName):  # noqa: N803
        return upload_with("AZURE", self._settings, blobPath, localPath, fileName)
