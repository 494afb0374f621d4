"""Test fixture: a release 6.0 job written the way its jobs are (own text): the 6.0 header (the
repository root on sys.path, ``from cloud_storage.cloud import MultiCloud``), a file list from the
output folder, ``upload_to_cloud(filesList=..., folderPathName=..., local_Path=...)``, the success
check that ends the job, and the Druid spec's inputSource taken from the answer."""

import json
import os
import sys
from configparser import ConfigParser, ExtendedInterpolation

config_path = os.path.split(os.path.dirname(os.path.abspath(__file__)))
config = ConfigParser(interpolation=ExtendedInterpolation())
config.read(config_path[0] + "/config.ini")

root_path = config_path[0]
sys.path.append(root_path)

import boto3  # noqa: E402,F401  (pinned 1.12.33 in the jobs' venv)
from cloud_storage.cloud import MultiCloud  # noqa: E402

cloud_init = MultiCloud()
print("python {}.{} boto3 {}".format(sys.version_info[0], sys.version_info[1], boto3.__version__))

local_path = config.get("OUTPUT_DIR", "observation_status")

fileList = []
for files in os.listdir(local_path):
    if "sl_observation_status.json" in files:
        fileList.append("sl_observation_status.json")

uploadResponse = cloud_init.upload_to_cloud(filesList=fileList, folderPathName="observation_blob_path",
                                            local_Path=local_path)
print("cloud upload response : " + json.dumps(uploadResponse))

if uploadResponse['success'] == False:  # noqa: E712 (as the jobs write it)
    sys.exit()

spec = json.loads(config.get("DRUID", "observation_status_injestion_spec"))
for index in uploadResponse['files']:
    if index['file'].split("/")[-1] in fileList:
        spec["spec"]["ioConfig"]["inputSource"] = index['inputSource']
print("ingest " + json.dumps(spec["spec"]["ioConfig"]["inputSource"]))
print("job finished: observation status")
