"""The ``ml-analytics`` console script: answers ``--version`` before importing anything else.

Start-up counts (a job may call the command once per report): ``ml-analytics --version`` costs
an interpreter plus this module, nothing more. Every other command goes to :func:`cli.main`.
"""

import sys

from . import __version__


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        sys.stdout.write(f"ml-analytics, version {__version__}\n")
        return
    from .cli import main as cli_main

    cli_main()
