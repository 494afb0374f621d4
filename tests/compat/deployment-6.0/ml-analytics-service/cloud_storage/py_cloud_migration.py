# Test fixture: stands in for the deployment's own py_cloud_migration.py (own text); compat install leaves it alone.
MIGRATION = "fixture"
