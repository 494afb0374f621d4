"""Test fixture: a job release 6.0 left on the 5.x form, written the way it is (own text):
``[COMMON] cloud_module_path`` on sys.path, ``from cloud import MultiCloud``, and the keyword call
``upload_to_cloud(blob_Path=..., local_Path=..., file_Name=...)`` that 6.0's own cloud.py refuses."""

import os
import sys
from configparser import ConfigParser, ExtendedInterpolation

config_path = os.path.split(os.path.dirname(os.path.abspath(__file__)))
config = ConfigParser(interpolation=ExtendedInterpolation())
config.read(config_path[0] + "/config.ini")
sys.path.append(config.get("COMMON", "cloud_module_path"))

from cloud import MultiCloud  # noqa: E402

cloud_init = MultiCloud()

local_path = config.get("OUTPUT_DIR", "project_rollup")
blob_path = config.get("COMMON", "projects_program_csv")

for files in sorted(os.listdir(local_path)):
    if files.endswith(".zip"):
        cloud_init.upload_to_cloud(blob_Path=blob_path, local_Path=local_path, file_Name=files)
print("job finished: program dashboard")
