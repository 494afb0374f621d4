"""Test fixture: a release 5.2 report job written the way its jobs are (own text).

It finds config.ini in the folder above its own, puts [COMMON] cloud_module_path on sys.path,
imports MultiCloud from `cloud` and uploads its output files with the 5.x keyword call.
"""

import os
import sys
from configparser import ConfigParser, ExtendedInterpolation

config_path = os.path.split(os.path.dirname(os.path.abspath(__file__)))
config = ConfigParser(interpolation=ExtendedInterpolation())
config.read(config_path[0] + "/config.ini")

sys.path.append(config.get("COMMON", "cloud_module_path"))

import boto3  # noqa: E402,F401  (pinned 1.12.33 in the jobs' venv)
from cloud import MultiCloud  # noqa: E402

print("python {}.{} boto3 {}".format(sys.version_info[0], sys.version_info[1], boto3.__version__))

cloud_init = MultiCloud()
local_path = config.get("OUTPUT_DIR", "project")
blob_path = config.get("COMMON", "projects_blob_path")
for files in sorted(os.listdir(local_path)):
    cloud_init.upload_to_cloud(blob_Path=blob_path, local_Path=local_path, file_Name=files)
print("job finished: projects")
