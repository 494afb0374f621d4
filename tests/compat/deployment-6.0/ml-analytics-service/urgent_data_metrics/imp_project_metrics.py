"""Test fixture: release 6.0's weekly NVSK job written the way it is (own text): two files in one
``upload_to_cloud`` call (the original cloud.py returned after the first), the failure logged and
the job ended."""

import json
import os
import sys
from configparser import ConfigParser, ExtendedInterpolation

config_path = os.path.split(os.path.dirname(os.path.abspath(__file__)))
config = ConfigParser(interpolation=ExtendedInterpolation())
config.read(config_path[0] + "/config.ini")
root_path = config_path[0]
sys.path.append(root_path)

from cloud_storage.cloud import MultiCloud  # noqa: E402

cloud_init = MultiCloud()

local_path = config.get("COMMON", "nvsk_imp_projects_data_local_path")
fileList = ["micro_improvement.csv", "micro_improvement.json"]

uploadResponse = cloud_init.upload_to_cloud(filesList=fileList, folderPathName="nvsk_imp_projects_data_blob_path",
                                            local_Path=local_path)
print("cloud upload response : " + json.dumps(uploadResponse))

if uploadResponse['success'] == False:  # noqa: E712
    print("Cloud Upload Failed.")
    sys.exit()

print("Cloud upload Success")
print("job finished: nvsk")
