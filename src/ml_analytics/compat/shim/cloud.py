# Written by ml-analytics compat install @VERSION@ for release @RELEASE@; re-run it to upgrade, do not edit.
"""MultiCloud for the ml-analytics jobs of release @RELEASE@, as they import it: ``from cloud import MultiCloud``.

Reads config.ini from the folder above this one (like the original module, whatever the working
directory) and uploads through the ml-analytics command (see _ml_analytics_runner.py) to every
cloud section that file configures. Any failure raises CloudUploadError with a one-line reason.
Standard library only, Python 3.6+.
"""

try:
    from _ml_analytics_runner import CloudUploadError, config_path, option, read_config, upload
except ImportError:  # imported as part of a package
    from ._ml_analytics_runner import CloudUploadError, config_path, option, read_config, upload

__all__ = ["MultiCloud", "CloudUploadError"]
# -- release 5.1 only: upload_to_NVSK_cloud (5.2 never had it) --

# Where the original sent upload_to_NVSK_cloud, unless [COMMON] nvsk_bucket_name names another bucket.
NVSK_BUCKET = "dev-diksha-privatereports"
# -- end of release 5.1 only --


class MultiCloud(object):
    """Upload to every cloud section of the deployment's config.ini."""

    def __init__(self):
        self.config_path = config_path()
        self.config = read_config(self.config_path)
        self.sections = self.config.sections()

    def upload_to_cloud(self, blob_Path, local_Path, file_Name):  # noqa: N803 (the jobs' keyword names)
        """Upload local_Path/file_Name to blob_Path/file_Name in every configured cloud."""
        return upload(blob_Path, local_Path, file_Name, config=self.config_path)
    # -- release 5.1 only: upload_to_NVSK_cloud --

    def upload_to_NVSK_cloud(self, blob_Path, local_Path, file_Name, customBucket=False):  # noqa: N802,N803
        """Upload to the [ORACLE] section's store, into the NVSK bucket (customBucket is ignored, as in
        the original)."""
        bucket = option(self.config, "COMMON", "nvsk_bucket_name") or NVSK_BUCKET
        return upload(blob_Path, local_Path, file_Name, config=self.config_path, to=["ORACLE"],
                      env={"ML_ANALYTICS_ORACLE_BUCKET_NAME": bucket})
    # -- end of release 5.1 only --
