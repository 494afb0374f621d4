# Test fixture: stands in for release 6.0's cloud_storage/constants.py (own text); compat install leaves it alone.
ACCEPTED = (200, 201)
ACTIONS = "/v1/cloud-services/storage/actions"
