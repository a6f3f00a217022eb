"""The tests' layers, a folder each with its harness beside its tests:

- ``offline/``: pure Python and the Pulumi SDK's mocks, the stand-in tools (kubectl, curl,
  ipmitool) and Debian's checkers; seconds, no root, nothing built;
- ``host/``: the simulated host: Debian's Ignition binary applies a machine's config into a
  scratch root and the setup, renewal and status units run there (root, mount namespaces);
- ``real/``: the real counterparts that ``scripts/tools`` builds (Matchbox, kubeadm, a real
  control plane with kwok in a network namespace);
- ``engine/``: the real Pulumi engine with this project's provider plugins (a package);
- ``lab/``: QEMU virtual machines booting through iPXE and the real Matchbox (a package).

Tests and harness modules import each other by top-level name (``from program_stacks import
...``), across layers too: pytest puts these folders on the module path (pyproject.toml
``pythonpath``), and the harness's own entry points call ``module_path``.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
LAYER_FOLDERS = ("offline", "host", "real")


def module_path() -> list[str]:
    """The folders a harness entry point puts first on ``sys.path``: tests/, its layers, and
    the repository's root."""
    return [str(TESTS), *(str(TESTS / folder) for folder in LAYER_FOLDERS), str(TESTS.parent)]
