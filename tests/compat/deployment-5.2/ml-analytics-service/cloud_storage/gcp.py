# Test fixture: stands in for release 5.2's original gcp.py (own text).
class GCP:
    def upload_files(self, *args, **kwargs):
        raise NotImplementedError("fixture stand-in for the original module")
