"""Drop-in for the real ml-analytics-service deployment.

``ml-analytics compat install DIR`` writes into the deployment's ``cloud_module_path`` folder the
modules its jobs import (``cloud.py`` with ``MultiCloud``, and the seed's ``aws.py``,
``ms_azure.py``, ``gcp.py``, ``oracle.py``). They are small standard-library modules that run in
the jobs' own interpreter (Python 3.6+, whatever SDKs it pins) and call this project's
``ml-analytics`` executable out of process (see :mod:`.install` and the sources in ``shim/``).
"""
