# Written by ml-analytics compat install @VERSION@ for release @RELEASE@; re-run it to upgrade, do not edit.
"""Runs the ml-analytics command for the modules next to this one.

The jobs' interpreter keeps its own Python and SDK pins: uploads happen in the ml-analytics
executable recorded below (its own virtualenv), called with --json. Credentials are never put on
its command line: they stay in config.ini, or travel in the child's environment.
Standard library only, Python 3.6+.
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

COMMAND = None  # the ml-analytics command, filled in by ml-analytics compat install
ENV_PREFIX = "ML_ANALYTICS_"
# ml-analytics prints each warning once per job run, not once per upload call: it records the ones
# it printed in this file, one per job process, removed when the job ends.
WARNINGS_FILE = os.path.join(tempfile.gettempdir(), "ml-analytics-warnings-{}-{}".format(os.getpid(),
                                                                                      os.urandom(8).hex()))


def _forget_warnings():
    try:
        os.unlink(WARNINGS_FILE)
    except OSError:
        pass


atexit.register(_forget_warnings)


class CloudUploadError(Exception):
    """An upload did not happen everywhere it should have. The message is ml-analytics' one-line error."""


def config_path():
    """The deployment's config.ini: in the folder above this one, whatever the working directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(here), "config.ini")


def upload(blob_path, local_path, file_name, config=None, to=(), env=None, env_only_section=None):
    """Upload local_path/file_name to blob_path/file_name; return ml-analytics' results (dicts).

    config: the config.ini to use. env: extra variables for the child. env_only_section: no config
    file at all; the child is configured by env alone for that one section (the seed's classes).
    Raises CloudUploadError carrying the one-line error when anything failed.
    """
    if not COMMAND:
        raise CloudUploadError("ml-analytics command not recorded; re-run: ml-analytics compat install "
                               + os.path.dirname(os.path.abspath(__file__)))
    file_name = str(file_name)
    source = os.path.abspath(os.path.join(str(local_path), file_name))
    if os.path.isdir(source):  # the library refuses a folder here too: the seed uploads one file
        raise CloudUploadError("{}: is a directory, expected a file".format(source))
    if not os.path.exists(source):
        raise CloudUploadError("{}: no such file".format(source))
    prefix = str(blob_path or "")
    sub = os.path.dirname(file_name)
    if sub:  # a file name with folders keeps them in the key, as bucketPath/fileName
        prefix = prefix.rstrip("/") + "/" + sub
    return _outcome(_run([source], prefix, config, to, env, env_only_section))


def upload_batch(prefix, sources, config=None, to=()):
    """Upload the files ``sources`` (absolute paths) under ``prefix`` in one ml-analytics run.

    Returns (results, message): ml-analytics' results (dicts, one per file and provider, failures
    included) and, when the run stopped before any result (a configuration error), its one-line error.
    Raises CloudUploadError only when ml-analytics cannot be run at all."""
    if not COMMAND:
        raise CloudUploadError("ml-analytics command not recorded; re-run: ml-analytics compat install "
                               + os.path.dirname(os.path.abspath(__file__)))
    proc = _run(list(sources), prefix, config, to, None, None)
    doc, errors, last = _parse(proc)
    results = (doc or {}).get("results") or []
    if results:
        return results, None
    if errors:
        return [], errors[-1]
    return [], "ml-analytics exited with code {}{}".format(proc.returncode, ": " + last[:300] if last else "")


def _run(sources, prefix, config, to, env, env_only_section):
    argv = list(COMMAND) + ["upload", "--json", "--prefix=" + prefix]
    if config:
        argv += ["--config", config]
    for section in to:
        argv += ["--to", section]
    argv += ["--"] + list(sources)

    child_env = dict(os.environ)
    # spark-submit and activated job venvs point these at the jobs' Python 3.8 libraries (old
    # azure-storage-blob, pyspark): ml-analytics runs on its own interpreter and must not see them.
    for name in ("PYTHONPATH", "PYTHONHOME"):
        child_env.pop(name, None)
    cwd = None
    if env_only_section:
        # Only this section's variables (e.g. an endpoint override) survive; no config file is read.
        keep = ENV_PREFIX + env_only_section.upper() + "_"
        for name in list(child_env):
            if name.startswith(ENV_PREFIX) and not name.startswith(keep):
                del child_env[name]
        cwd = tempfile.mkdtemp(prefix="ml-analytics-")  # no ./config.ini to be found there
    child_env.update(env or {})
    child_env[ENV_PREFIX + "JOB_WARNINGS"] = WARNINGS_FILE
    try:
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=child_env, cwd=cwd, universal_newlines=True)
        except OSError as e:
            raise CloudUploadError("cannot run ml-analytics ({}): {}; re-run ml-analytics compat install"
                                   .format(COMMAND[0], e.strerror or e))
    finally:
        if cwd:
            shutil.rmtree(cwd, ignore_errors=True)
    return proc


def _parse(proc):
    """(the --json document or None, ml-analytics' error lines, its last other stderr line); other
    stderr lines (warnings) go to the job's stderr."""
    errors = []
    last = ""
    for line in proc.stderr.splitlines():
        if line.startswith("ml-analytics: error: "):
            errors.append(line[len("ml-analytics: error: "):])
        elif line.strip():
            last = line.strip()
            sys.stderr.write(line + "\n")  # warnings: keep them in the job's log
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    return doc, errors, last


def _outcome(proc):
    doc, errors, last = _parse(proc)
    results = (doc or {}).get("results") or []
    failed = [r for r in results if r.get("status") == "failed"]
    uploaded = [r for r in results if r.get("status") in ("uploaded", "skipped")]
    if proc.returncode == 0 and doc is not None and doc.get("ok") and not failed and uploaded:
        return results
    if proc.returncode == 0 and doc is not None and not uploaded and not failed:
        raise CloudUploadError("ml-analytics reported no upload at all for this file; nothing was stored")
    if failed:
        message = "; ".join("{} {}: {}".format(r.get("provider"), r.get("key"), r.get("error")) for r in failed[:5])
        message = "{} of {} uploads failed: {}".format(len(failed), len(results), message)
    elif errors:
        message = errors[-1]
    else:
        message = "ml-analytics exited with code {}{}".format(proc.returncode, ": " + last[:300] if last else "")
    raise CloudUploadError(message)


def read_config(path):
    """The deployment's config.ini, read as the original cloud.py read it (missing: an error)."""
    import configparser

    if not os.path.isfile(path):
        raise CloudUploadError("no config.ini at {} (the folder above {})".format(
            path, os.path.dirname(os.path.abspath(__file__))))
    parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    try:
        with open(path, encoding="utf-8-sig") as fh:
            parser.read_file(fh)
    except (OSError, UnicodeDecodeError, configparser.Error) as e:
        raise CloudUploadError("{}: cannot be read: {}".format(path, " ".join(str(e).split())[:300]))
    return parser


def option(parser, section, key):
    """A value of the config, or None when missing or empty."""
    try:
        value = parser.get(section, key)
    except Exception:  # missing section or key, bad ${...} reference: treated as unset
        return None
    value = value.strip()
    return value or None


def upload_with(section, settings, blob_path, local_path, file_name):
    """The seed classes' upload: one section configured from the constructor's values alone (they
    reach the child in its environment, never on its command line; config.ini is not read)."""
    env = {}
    for key, value in settings.items():
        if value is not None and str(value) != "":
            env[ENV_PREFIX + section + "_" + key.upper()] = str(value)
    return upload(blob_path, local_path, file_name, to=[section], env=env, env_only_section=section)
