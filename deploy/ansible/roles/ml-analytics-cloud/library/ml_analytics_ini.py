#!/usr/bin/python
# Part of ml-analytics-cloud's Ansible role (deploy/ansible). MIT licence.
"""Set keys in sections of an INI file the way a person would edit it: every other line stays as it is."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ml_analytics_ini
short_description: Set keys in existing sections of config.ini, leaving every other line alone
description:
  - For each section and key of I(settings), replaces the key's value in that section, or adds the key at
    the end of the section. An empty value leaves the file as it is.
  - A section missing from the file is an error naming it (the deployment's template renders the sections).
  - C($) is written as C($$), since the file is read with ExtendedInterpolation.
  - The file keeps its owner and mode. Values are never logged.
options:
  path: {description: The INI file., required: true, type: path}
  settings: {description: "{SECTION: {key: value}}", required: true, type: dict}
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")


def _key_re(key):
    return re.compile(r"^\s*" + re.escape(key) + r"\s*[=:](.*)$", re.IGNORECASE)


def apply(lines, settings):
    """The new lines and the (section, key) pairs that changed; raises KeyError(section) for a missing one."""
    changed = []
    for section, values in settings.items():
        for key, value in (values or {}).items():
            if value is None or str(value).strip() == "":
                continue
            value = str(value).strip().replace("$", "$$")
            start = next((i for i, line in enumerate(lines) if SECTION.match(line)
                          and SECTION.match(line).group(1).strip() == section), None)
            if start is None:
                raise KeyError(section)
            end = next((i for i in range(start + 1, len(lines)) if SECTION.match(lines[i])), len(lines))
            wanted = "{} = {}\n".format(key, value)
            pattern = _key_re(key)
            at = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
            if at is not None:
                if pattern.match(lines[at]).group(1).strip() != value:
                    lines[at] = wanted
                    changed.append((section, key))
                continue
            last = max([i for i in range(start, end) if lines[i].strip()] or [start])
            if not lines[last].endswith("\n"):
                lines[last] += "\n"
            lines[last + 1:last + 1] = ["\n", wanted]  # the role's style: a blank line between keys
            changed.append((section, key))
    return lines, changed


def main():
    module = AnsibleModule(argument_spec=dict(path=dict(type="path", required=True),
                                              settings=dict(type="dict", required=True, no_log=True)),
                           supports_check_mode=True)
    path = module.params["path"]
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except (OSError, IOError) as e:
        module.fail_json(msg="{}: cannot be read: {}".format(path, e.strerror or e))
    try:
        lines, changed = apply(lines, module.params["settings"])
    except KeyError as e:
        module.fail_json(msg="{}: no [{}] section to set keys in (did the service role render it? is "
                             "ML_Cloud_Service_Provider right?)".format(path, e.args[0]))
    keys = ["[{}] {}".format(s, k) for s, k in changed]
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(prefix=".config.ini.", dir=os.path.dirname(os.path.abspath(path)))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
        module.atomic_move(tmp, path)  # keeps the file's owner and mode
    module.exit_json(changed=bool(changed), keys=keys)


if __name__ == "__main__":
    main()
