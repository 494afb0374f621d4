"""``ml-analytics scaffold provider NAME``: everything a new cloud needs, in every place the original
procedure names, so that a new cloud is one command plus filling in the upload.

The original procedure had four places: a module in ``cloud_storage/``, an ``elif`` in ``cloud.py``,
a section in ``config.sample``, and variables in sunbird-devops' ``defaults/main.yml``; the file that
really renders config.ini, the role's ``templates/config.j2``, is a fifth. This writes:

* ``ml_analytics_NAME.py``: the provider (the contract's methods, TODOs where the cloud's SDK goes);
  no ``elif`` anywhere, the registry finds it;
* ``tests/test_ml_analytics_NAME.py``: the conformance suite on it; ``pyproject.toml``: installable too;
* ``config.sample``: the section in the seed's style (``{{ ml_NAME_key }}`` placeholders);
* ``ansible/defaults-main.yml`` and ``ansible/config.j2-branch``: the role's variables and the
  ``{% elif ML_Cloud_Service_Provider is equalto 'name' %}`` branch (``--role`` puts them into a
  sunbird-devops checkout's role, ``--config-sample`` the section into the app's config.sample);
* ``ansible/ml-analytics-cloud.yml``: the variables of this project's role (deploy/ansible).

``--dry-run`` prints what would be written and changes nothing. Nothing is left half-written: every
file is checked first, then each is written whole.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from ..errors import EXIT_OK, UsageError
from ..source import replace_file
from .common import output_for
from .scaffold_texts import BRANCH, CONFIG_SAMPLE, DEFAULTS, PROVIDER, PYPROJECT, ROLE_VARS, TEST, fill

# Keys when none are given: the seed's S3-like set (what the role's shared variables hold).
DEFAULT_KEYS = ("endpoint_url", "access_key:secret", "secret_access_key:secret", "region_name", "bucket_name:required")
# The sunbird-devops variables the role's existing branches render these keys from.
SHARED_VARIABLES = {"endpoint_url": "cloud_public_storage_endpoint", "access_key": "cloud_public_storage_accountname",
                    "account_name": "cloud_public_storage_accountname",
                    "secret_access_key": "cloud_public_storage_secret",
                    "account_key": "cloud_public_storage_secret", "region_name": "cloud_public_storage_region",
                    "bucket_name": "cloud_storage_telemetry_bucketname",
                    "container_name": "cloud_storage_telemetry_bucketname"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_ELSE = re.compile(r"^\s*\{%-?\s*else\s*-?%\}\s*$")
_CHAIN = re.compile(r"ML_Cloud_Service_Provider\s+is\s+(?:equalto|eq|sameas)\s+'([^']*)'|"
                    r"ML_Cloud_Service_Provider\s*==\s*'([^']*)'")


class Key:
    def __init__(self, spec: str):
        name, *flags = spec.split(":")
        if not _KEY.match(name) or any(f not in ("required", "secret") for f in flags):
            raise UsageError(f"--key {spec}: expected NAME[:required][:secret], NAME in lower case "
                             f"(letters, digits, _)")
        self.name, self.required, self.secret = name, "required" in flags, "secret" in flags

    @property
    def attribute(self) -> str:
        return f"_secret_{self.name}" if self.secret else self.name


def _texts(name: str, keys: list[Key], csp: str, out: Path) -> dict[str, str]:
    section = name.upper()
    module = f"ml_analytics_{name.lower()}"
    cls = "".join(part.capitalize() for part in name.lower().split("_")) or section
    opts = []
    for k in keys:
        flags = "".join((", required=True" if k.required else "", ", secret=True" if k.secret else "",
                         ', kind="url"' if k.name.endswith("_url") else ""))
        opts.append(f'        Option("{k.name}", "TODO: what {k.name} is"{flags}),')
    ordered = [k for k in keys if k.required] + [k for k in keys if not k.required]
    args = "\n        self," + "".join(f"\n        {k.name}: str," if k.required
                                         else f"\n        {k.name}: str | None = None," for k in ordered) + "\n    "
    body = []
    for k in keys:
        if k.name == "bucket_name":
            body.append("        self.bucket = bucket_name  # what uri(), messages and the Druid hand-off name")
            continue
        note = "  # _secret*: masked in every message" if k.secret else ""
        body.append(f"        self.{k.attribute} = {k.name}{note}")
    if not any(k.name == "bucket_name" for k in keys):
        body.append(f'        self.bucket = "{section.lower()}"  # TODO: what the objects are kept in')
    env = "\n".join(f"  ML_ANALYTICS_{section}_{k.name.upper()}" + (" (required)" if k.required else "")
                    for k in keys)

    def names(which) -> str:
        chosen = [f'"{k.name}"' for k in keys if which(k)]
        return ", ".join(chosen) + ("," if len(chosen) == 1 else "")

    values = {"SECTION": section, "NAME": name.lower(), "MODULE": module, "CLASS": cls, "CSP": csp,
              "DESCRIPTION": f"{section} object storage.", "SCHEME": name.lower().replace("_", "-"),
              "OPTIONS": "\n".join(opts), "INIT_ARGS": args, "INIT_BODY": "\n".join(body), "ENV_LIST": env,
              "KEY_NAMES": names(lambda k: True), "REQUIRED_NAMES": names(lambda k: k.required),
              "SECRET_NAMES": names(lambda k: k.secret), "DIST": f"ml-analytics-{name.lower().replace('_', '-')}",
              "ENTRY": name.lower(), "PROVIDER_FILE": str(out / f"{module}.py"),
              "SAMPLE_KEYS": "\n\n".join(f"{k.name} = {{{{ ml_{section}_{k.name} }}}}" for k in keys),
              "BRANCH_KEYS": "\n\n".join(f"{k.name} = {{{{ ml_{section}_{k.name} }}}}" for k in keys),
              "DEFAULT_VARS": "\n".join(
                  f'ml_{section}_{k.name}: "{{{{ {SHARED_VARIABLES[k.name]} }}}}"' if k.name in SHARED_VARIABLES
                  else f'ml_{section}_{k.name}: ""  # TODO' for k in keys)}
    return {f"{module}.py": fill(PROVIDER, values), f"tests/test_{module}.py": fill(TEST, values),
            "pyproject.toml": fill(PYPROJECT, values), "config.sample": fill(CONFIG_SAMPLE, values),
            "ansible/defaults-main.yml": fill(DEFAULTS, values).lstrip("\n"),
            "ansible/config.j2-branch": fill(BRANCH, values), "ansible/ml-analytics-cloud.yml": fill(ROLE_VARS, values)}


def _with_branch(template: str, branch: str, csp: str, path: Path) -> str | None:
    """config.j2 with ``branch`` before the cloud chain's ``{% else %}``; None when the chain already
    has a branch for ``csp``."""
    lines = template.splitlines(keepends=True)
    tested = [i for i, line in enumerate(lines) if _CHAIN.search(line)]
    if not tested:
        raise UsageError(f"{path}: no cloud chain ({{% if ML_Cloud_Service_Provider is equalto '…' %}}) to add a "
                         f"branch to")
    if any(csp in (m.group(1), m.group(2)) for i in tested for m in _CHAIN.finditer(lines[i])):
        return None
    at = next((i for i in range(tested[-1] + 1, len(lines)) if _ELSE.match(lines[i])), None)
    if at is None:
        raise UsageError(f"{path}: the cloud chain has no {{% else %}} to put the branch before")
    return "".join(lines[:at]) + branch + "\n" + "".join(lines[at:])


def _plan(texts: dict[str, str], out: Path, force: bool, role: Path | None, sample: Path | None,
          section: str, csp: str) -> list[tuple[Path, str, str]]:
    """(path, new text, what) for every file to write; refuses before anything is written."""
    plan = []
    for rel, text in texts.items():
        path = out / rel
        if path.exists() and not force:
            raise UsageError(f"{path} exists; pass --force to overwrite the scaffold's files")
        plan.append((path, text, "overwrite" if path.exists() else "new"))
    if role is not None:
        defaults, template = role / "defaults" / "main.yml", role / "templates" / "config.j2"
        for f in (defaults, template):
            if not f.is_file():
                raise UsageError(f"--role {role}: no {f.relative_to(role)} (expected sunbird-devops' "
                                 f"ansible/roles/ml-analytics-service)")
        current = defaults.read_text(encoding="utf-8")
        if f"ml_{section}_" in current:
            plan.append((defaults, current, f"unchanged (it has ml_{section}_* already)"))
        else:
            plan.append((defaults, current.rstrip("\n") + "\n\n" + texts["ansible/defaults-main.yml"], "add variables"))
        current = template.read_text(encoding="utf-8")
        edited = _with_branch(current, texts["ansible/config.j2-branch"], csp, template)
        plan.append((template, edited or current, "add branch" if edited else f"unchanged (it has a '{csp}' branch)"))
    if sample is not None:
        if not sample.is_file():
            raise UsageError(f"--config-sample {sample}: no such file")
        current = sample.read_text(encoding="utf-8")
        if re.search(rf"^\s*\[{re.escape(section)}\]\s*$", current, re.M):
            plan.append((sample, current, f"unchanged (it has [{section}])"))
        else:
            plan.append((sample, current.rstrip("\n") + "\n\n" + texts["config.sample"], "add section"))
    return plan


def _write(path: Path, text: str) -> None:
    replace_file(path, text, mode=path.stat().st_mode & 0o777 if path.exists() else 0o644)


@click.group("scaffold")
def scaffold_command() -> None:
    """Write the files a new piece needs."""


@scaffold_command.command("provider")
@click.argument("name")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False), default=None,
              help="Folder for the provider and the snippets (default: ./ml-analytics-NAME).")
@click.option("--key", "keys", multiple=True, metavar="NAME[:required][:secret]",
              help="A config key of the section (repeatable; default: endpoint_url, access_key, secret_access_key, "
                   "region_name, bucket_name).")
@click.option("--csp", "csp", default=None, metavar="VALUE",
              help="The ML_Cloud_Service_Provider value that selects it (default: NAME in lower case).")
@click.option("--role", "role", type=click.Path(file_okay=False), default=None,
              help="sunbird-devops' ansible/roles/ml-analytics-service: add the variables and the config.j2 branch.")
@click.option("--config-sample", "sample", type=click.Path(dir_okay=False), default=None,
              help="The app's config.sample: add the section.")
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
@click.option("--force", is_flag=True, help="Overwrite the scaffold's own files in the output folder.")
@click.pass_context
def provider_command(ctx, name, out, keys, csp, role, sample, dry_run, force):
    """Everything a new cloud NAME needs: provider module, conformance test, config.sample section,
    sunbird-devops variables and config.j2 branch, and this project's role variables."""
    from ..cloud_storage.registry import BUILTINS

    output = output_for(ctx)
    if not _NAME.match(name):
        raise UsageError(f"provider name {name!r}: letters, digits and _, starting with a letter (at most 40)")
    section = name.upper()
    if section in BUILTINS:
        raise UsageError(f"[{section}] is a built-in provider; pick another name (a replacement says "
                         f"replaces = \"{section}\" in its class)")
    parsed = [Key(k) for k in (keys or DEFAULT_KEYS)]
    if len({k.name for k in parsed}) != len(parsed):
        raise UsageError("--key: a key is named twice")
    csp = csp or name.lower()
    if not re.match(r"^[A-Za-z0-9_.-]+$", csp):
        raise UsageError(f"--csp {csp!r}: letters, digits, '.', '-' and '_' only")
    folder = Path(out or f"ml-analytics-{name.lower().replace('_', '-')}").resolve()
    texts = _texts(name, parsed, csp, folder)
    plan = _plan(texts, folder, force, Path(role).resolve() if role else None,
                 Path(sample).resolve() if sample else None, section, csp)
    for path, text, what in plan:
        if dry_run:
            output.out(f"--- {path} ({what})")
            if not what.startswith("unchanged"):
                output.out(text.rstrip("\n"))
            continue
        if not what.startswith("unchanged"):
            _write(path, text)
        output.out(f"{what:<14} {path}")
    if dry_run:
        output.out("(dry run: nothing written)")
        ctx.exit(EXIT_OK)
    module = folder / f"ml_analytics_{name.lower()}.py"
    output.out(f"next: fill in the TODOs of {module} (the upload first) and read_back in "
               f"{folder / 'tests' / ('test_ml_analytics_' + name.lower() + '.py')}, then run it against a server of "
               f"this cloud: cd {folder} && ML_ANALYTICS_{section}_<KEY>=... python -m pytest")
    output.out(f"      ML_ANALYTICS_PROVIDER_PATH={folder} ml-analytics providers  # lists [{section}]")
    if role is None:
        output.out(f"      sunbird-devops: append {folder / 'ansible' / 'defaults-main.yml'} to the role's "
                   f"defaults/main.yml and put {folder / 'ansible' / 'config.j2-branch'} before the "
                   f"{{% else %}} of templates/config.j2's cloud chain (or re-run with --role)")
    output.out(f"      this project's role: the variables in {folder / 'ansible' / 'ml-analytics-cloud.yml'}, and "
               f"cloud_service_provider: {csp}")
    ctx.exit(EXIT_OK)
