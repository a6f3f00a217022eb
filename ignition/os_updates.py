"""OS updates held while a machine sets up: the file that holds them and the updater reading it.

The setup unit runs before the updater starts (its Before=), and its last phase removes the hold,
so the updater's first start after setup reads none; a setup that stops for good keeps it.

- Fedora CoreOS: Zincati reads /etc/zincati/config.d/*.toml, and `[updates] enabled = false`
  stops it (coreos/zincati docs/usage/auto-updates.md).
- Flatcar: update-engine reads /usr/share/flatcar/update.conf, then /etc/flatcar/update.conf,
  and `SERVER=disabled` stops it from looking for updates (flatcar/flatcar-website docs,
  update-strategies.md, "Disable Automatic Updates": Flatcar recommends this over masking
  update-engine; switching-channels.md names the two files); locksmithd reads the same file
  (flatcar/locksmith systemd/locksmithd.service, EnvironmentFile=-/etc/flatcar/update.conf).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackconfig.model import StackConfig


@dataclass(frozen=True)
class UpdatesHold:
    updater: str
    """The service that updates the OS, which the setup unit runs before."""
    unit: str
    hold_file: str
    """What the setup phase "finish" removes."""


ZINCATI = UpdatesHold(
    "Zincati", "zincati.service", "/etc/zincati/config.d/90-stubernetes-hold-updates.toml"
)
# Zincati's reboot strategy: fleet-lock against the core chart's server (Fedora CoreOS only).
ZINCATI_STRATEGY = "/etc/zincati/config.d/55-stubernetes-fleetlock.toml"
UPDATE_ENGINE = UpdatesHold("update-engine", "update-engine.service", "/etc/flatcar/update.conf")


def updates_hold(stack: StackConfig) -> UpdatesHold:
    return UPDATE_ENGINE if stack.os.is_flatcar else ZINCATI
