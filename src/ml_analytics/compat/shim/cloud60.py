# Written by ml-analytics compat install @VERSION@ for release @RELEASE@; re-run it to upgrade, do not edit.
"""MultiCloud for the ml-analytics jobs of release 6.0, imported either way they do it:
``from cloud_storage.cloud import MultiCloud`` (the 6.0 jobs) or ``from cloud import MultiCloud``
(the jobs 6.0 left on the 5.x form).

Uploads go through ml-analytics' [ML_CORE] provider: pre-signed URLs from the platform's
ml-core-service, configured by the deployment's own config.ini ([ML_CORE_SERVICE_URL] url,
[API_HEADERS] internal_access_token, [CLOUD] container_name), as the original module was.

``upload_to_cloud(filesList, folderPathName, local_Path)`` (6.0's form) uploads every file of
filesList to the folder [COMMON] folderPathName names and returns 6.0's dict: ``files`` (one entry
per file of filesList, in its order: ``file``, ``payload``, ``cloudStorage``, ``inputSource`` for a
stored file, and ``status``/``error``), ``status_code``, ``success``, ``folderPathName`` (the
resolved folder) and ``error``. ``success`` is True only when every file was stored; a failed file
has no ``inputSource``, so no job can hand Druid a file that was not stored, and its reason is
written to stderr on one line. The 6.0 jobs test ``uploadResponse['success']`` and stop, so
failures are returned, not raised; a config.ini that does not configure the upload raises, as the
original's configparser errors did. No pre-signed URL is in the dict (the original put them there,
and the jobs log the dict).

``upload_to_cloud(blob_Path=..., local_Path=..., file_Name=...)`` (the 5.x form, keywords or three
positional strings) uploads one file the same way and raises CloudUploadError when it was not
stored, as the 5.x modules do.

Standard library only, Python 3.6+.
"""

import os
import sys

try:
    from _ml_analytics_runner import CloudUploadError, config_path, option, read_config, upload, upload_batch
except ImportError:  # imported as part of a package (from cloud_storage.cloud import MultiCloud)
    from ._ml_analytics_runner import CloudUploadError, config_path, option, read_config, upload, upload_batch

__all__ = ["MultiCloud", "CloudUploadError"]

SECTION = "ML_CORE"
# The service's inputSource for each URI scheme ml-analytics reports: (Druid input source type, cloudStorage).
BY_SCHEME = {"azure": ("azure", "AZURE"), "s3": ("s3", "S3"), "gs": ("google", "GCLOUD")}


class MultiCloud(object):
    """Release 6.0's MultiCloud: uploads through ml-core-service's pre-signed URLs."""

    def __init__(self):
        self.config_path = config_path()
        self.config = read_config(self.config_path)
        self.sections = self.config.sections()

    def upload_to_cloud(self, filesList=None, folderPathName=None, local_Path=None,  # noqa: N803 (the jobs' names)
                        blob_Path=None, file_Name=None):
        """6.0's form (filesList, folderPathName, local_Path): every file, 6.0's dict back. The 5.x form
        (blob_Path, local_Path, file_Name): one file, raises when it was not stored."""
        if blob_Path is not None or file_Name is not None:
            if filesList is not None or folderPathName is not None:
                raise TypeError("upload_to_cloud() takes either filesList, folderPathName, local_Path (6.0) or "
                                "blob_Path, local_Path, file_Name (5.x), not both")
            return self._upload_5x(blob_Path, local_Path, file_Name)
        if isinstance(filesList, str):  # three positional strings: the 5.x form, upload_to_cloud(path, dir, name)
            return self._upload_5x(filesList, folderPathName, local_Path)
        if filesList is None or folderPathName is None or local_Path is None:
            raise TypeError("upload_to_cloud() needs filesList, folderPathName and local_Path")
        return self._upload_60(list(filesList), folderPathName, local_Path)

    def _upload_5x(self, blob_Path, local_Path, file_Name):  # noqa: N803
        if blob_Path is None or local_Path is None or file_Name is None:
            raise TypeError("upload_to_cloud() needs blob_Path, local_Path and file_Name")
        return upload(blob_Path, local_Path, file_Name, config=self.config_path, to=[SECTION])

    def _upload_60(self, names, folder_key, local_path):
        folder = option(self.config, "COMMON", str(folder_key))
        if folder is None:
            raise CloudUploadError("{}: [COMMON] {} is missing or empty (upload_to_cloud's folderPathName names it)"
                                   .format(self.config_path, folder_key))
        response = {"files": [], "status_code": None, "success": False, "folderPathName": folder, "error": ""}
        outcome = {}  # file name -> (status, result or error)
        groups = {}  # sub-folder of a name -> [(name, absolute path)]
        for name in names:
            name = str(name)
            source = os.path.abspath(os.path.join(str(local_path), name))
            if not os.path.isfile(source):
                why = "is a directory, expected a file" if os.path.isdir(source) else "no such file"
                outcome[name] = ("failed", "{}: {}".format(source, why))
            else:
                groups.setdefault(os.path.dirname(name), []).append((name, source))
        for sub, members in sorted(groups.items()):
            prefix = folder.rstrip("/") + "/" + sub if sub else folder
            results, message = upload_batch(prefix, [source for _, source in members], config=self.config_path,
                                            to=[SECTION])
            if message is not None:
                raise CloudUploadError(message)  # nothing was tried: the configuration is at fault
            by_source = {}
            for result in results:
                by_source.setdefault(os.path.abspath(str(result.get("source") or "")), []).append(result)
            for name, source in members:
                found = by_source.get(source, [])
                failed = [r for r in found if r.get("status") not in ("uploaded", "skipped")]
                if found and not failed:
                    outcome[name] = ("uploaded", found[0])
                else:
                    reason = (failed[0].get("error") if failed else None) or "ml-analytics reported no upload for it"
                    outcome[name] = ("failed", reason)
        errors = []
        for name in names:
            status, detail = outcome[str(name)]
            key = folder.rstrip("/") + "/" + str(name) if folder else str(name)
            entry = {"file": key, "payload": {"sourcePath": key}}
            if status == "uploaded":
                key = detail.get("key") or key
                entry = {"file": key, "payload": {"sourcePath": key}}
                scheme = str(detail.get("uri") or "").split("://", 1)[0]
                kind, cloud = BY_SCHEME.get(scheme, (scheme, scheme.upper()))
                entry["cloudStorage"] = cloud
                entry["inputSource"] = {"type": kind, "uris": [detail.get("uri")]}
                entry["status"], entry["error"] = "uploaded", ""
            else:
                entry["status"], entry["error"] = "failed", detail
                errors.append("{}: {}".format(key, detail))
            response["files"].append(entry)
        if errors or not names:
            response["error"] = "; ".join(errors) if errors else "filesList is empty: no file to upload"
            sys.stderr.write("ml-analytics: error: upload_to_cloud: {} of {} file(s) not stored: {}\n".format(
                len(errors) if names else 0, len(names), response["error"]))
        else:
            response["success"], response["status_code"] = True, 200
        return response
