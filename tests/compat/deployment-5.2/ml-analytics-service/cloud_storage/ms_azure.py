# Test fixture: stands in for release 5.2's original ms_azure.py (own text).
class MSAzure:
    def upload_files(self, *args, **kwargs):
        raise NotImplementedError("fixture stand-in for the original module")
