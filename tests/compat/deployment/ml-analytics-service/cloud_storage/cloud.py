# Test fixture: stands in for release 5.1's original cloud.py (own text, the same MultiCloud API). It
# imports an SDK the way the original does, so the jobs' interpreter would need it.
import boto3  # noqa: F401


class MultiCloud:
    def upload_to_cloud(self, blob_Path, local_Path, file_Name):  # noqa: N803
        raise NotImplementedError("fixture stand-in for the original module")

    def upload_to_NVSK_cloud(self, blob_Path, local_Path, file_Name, customBucket=False):  # noqa: N802,N803
        raise NotImplementedError("fixture stand-in for the original module")
