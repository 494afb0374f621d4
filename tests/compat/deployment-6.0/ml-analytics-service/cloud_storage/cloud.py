# Test fixture: stands in for release 6.0's original cloud.py (own text, the same MultiCloud API). Like
# the original it imports requests (not in the jobs' test venv) and its constants as a package module.
import requests  # noqa: F401

import cloud_storage.constants as constants  # noqa: F401


class MultiCloud:
    def upload_to_cloud(self, filesList, folderPathName, local_Path):  # noqa: N803
        raise NotImplementedError("fixture stand-in for the original module")
