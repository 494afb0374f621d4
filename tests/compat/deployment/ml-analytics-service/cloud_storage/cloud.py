# Test fixture: stands in for the deployment's original cloud.py (own text). It imports an SDK the
# way the original does, so the jobs' interpreter would need it.
import boto3  # noqa: F401


class MultiCloud:
    def upload_to_cloud(self, blob_Path, local_Path, file_Name):  # noqa: N803
        raise NotImplementedError("fixture stand-in for the original module")
