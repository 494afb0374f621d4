"""Test fixture: release 5.2's weekly NVSK job, written the way it is (own text): 5.2 uploads data.csv with
upload_to_cloud (5.1's upload_to_NVSK_cloud does not exist in 5.2)."""

import os
import sys
from configparser import ConfigParser, ExtendedInterpolation

config_path = os.path.split(os.path.dirname(os.path.abspath(__file__)))
config = ConfigParser(interpolation=ExtendedInterpolation())
config.read(config_path[0] + "/config.ini")
sys.path.append(config.get("COMMON", "cloud_module_path"))

from cloud import MultiCloud  # noqa: E402

cloud_init = MultiCloud()
local_path = config.get("COMMON", "nvsk_imp_projects_data_local_path")
blob_path = config.get("COMMON", "nvsk_imp_projects_data_blob_path")
cloud_init.upload_to_cloud(blob_Path=blob_path, local_Path=local_path, file_Name="data.csv")
print("has upload_to_NVSK_cloud: {}".format(hasattr(cloud_init, "upload_to_NVSK_cloud")))
print("job finished: nvsk")
