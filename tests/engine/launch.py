"""``python -P tests/engine/launch.py MODULE [ARG...]``: run MODULE (``engine.lab``,
``engine.driver``, ``engine.plugins.command_provider``...) as ``python -m`` would, with tests/
and the repository's root first on its module path.

Not through PYTHONPATH: an exported variable reaches every process below, the engine, its
plugins and the scripts that the command plugin runs, which would then find this repository's
test modules where an operator's ``pulumi up`` finds none (pulumi/pulumi-command v1.2.1
provider/pkg/provider/local/commandOutputs.go run: a command's environment is the plugin's,
``os.Environ()``, plus the resource's ``environment``). Standard library only.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent


def argv(module: str, *args: str, python: str = sys.executable) -> list[str]:
    """The command line that runs ``module`` with ``args`` this way."""
    return [python, "-P", str(Path(__file__).resolve()), module, *args]


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -P tests/engine/launch.py MODULE [ARG...]")
    sys.path[:0] = [str(TESTS)]
    from layers import module_path

    sys.path[:0] = module_path()
    module = sys.argv.pop(1)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
