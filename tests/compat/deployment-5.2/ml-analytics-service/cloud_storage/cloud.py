# Test fixture: stands in for release 5.2's original cloud.py (own text, the same MultiCloud API: no
# upload_to_NVSK_cloud). It imports its sibling modules flat, as the original does.
from aws import AWS  # noqa: F401


class MultiCloud:
    def upload_to_cloud(self, blob_Path, local_Path, file_Name):  # noqa: N803
        raise NotImplementedError("fixture stand-in for the original module")
