"""Sources of the modules ``ml-analytics compat install`` writes into a deployment.

They are templates, not part of this package's API: the installer copies them with the path of
the ``ml-analytics`` executable filled in. They must stay standard-library only and Python 3.6
compatible, since they run in the jobs' interpreter.
"""
