"""Test fixture: release 6.0's program-level job written the way it is (own text): it does not test
``success`` and takes each listed file's inputSource for its Druid spec."""

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

local_path = config.get("OUTPUT_DIR", "projects_distinctCount_prgmlevel")
fileList = []
for files in os.listdir(local_path):
    if "ml_projects_distinctCount_prgmlevel.json" in files:
        fileList.append("ml_projects_distinctCount_prgmlevel.json")

uploadResponse = cloud_init.upload_to_cloud(filesList=fileList, folderPathName="projects_distinctCnt_blob_path",
                                            local_Path=local_path)
print("cloud upload response : " + json.dumps(uploadResponse))

spec = json.loads(config.get("DRUID", "ml_distinctCnt_prglevel_projects_status_spec"))
for index in uploadResponse['files']:
    if index['file'].split("/")[-1] in fileList:
        spec["spec"]["ioConfig"]["inputSource"] = index['inputSource']
print("ingest " + json.dumps(spec["spec"]["ioConfig"]["inputSource"]))
print("job finished: prglevel")
