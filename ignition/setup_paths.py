"""Where the setup service and the program's scripts live on a Fedora CoreOS machine.

A Flatcar machine has them relocated to /opt (ignition/flatcar_machine.py).
"""

from __future__ import annotations

SETUP_UNIT = "stubernetes-setup.service"
SETUP_BIN = "/usr/local/bin/stubernetes-setup"
SETUP_LIB = "/usr/local/lib/stubernetes"
SETUP_CONF = "/etc/stubernetes"
