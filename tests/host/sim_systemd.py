"""systemd's unit semantics as the simulated host applies them at power-on and on `start`.

A stand-in for the parts of systemd the node's units rely on, read from the unit files the
REAL Ignition wrote. What it follows (systemd man pages):
- systemd.unit(5), "[Unit] Section Options": `ConditionPathExists=` (with `!` negated, with
  `|` a triggering condition: of those, one must hold; every plain one must hold; an empty
  assignment resets the list); a unit whose condition fails is skipped, not failed.
  Drop-ins in UNIT.d/*.conf are read after the unit file, in file name order; for a list
  setting such as `ExecStart=` an empty assignment resets what came before ("Description" of
  drop-in files, and systemd.service(5) `ExecStart=`).
- systemd.service(5): `Type=oneshot` (the start job ends when the commands have run, in
  order; a failing one ends the rest unless prefixed with `-`), `RemainAfterExit=`,
  `TimeoutStartSec=` (`infinity`: none; default 90 s, systemd-system.conf(5)
  DefaultTimeoutStartSec). systemd.exec(5) `Environment=`: space-separated assignments,
  quoted as a shell quotes them, passed to the commands; an empty one resets the list.
- systemd.preset(5): on first boot the presets decide which units are enabled; the first
  matching line of the *.preset files, in file name order, wins; Fedora CoreOS ends its
  presets with `disable *`. Ignition writes its enabled units as 20-ignition.preset (coreos/
  ignition internal/exec/stages/files/units.go createSystemdPresetFile), and a masked unit as
  a link to /dev/null (systemctl(1) "mask").
- systemd.special(7) and systemd.unit(5) `WantedBy=`: an enabled unit starts at boot when the
  default target (multi-user.target on Fedora CoreOS) wants it.
Anything a unit of the node asks for that is not modelled here (other conditions, service
types the simulation would run, exec prefixes other than `-`) is refused, not ignored.
"""

from __future__ import annotations

import fnmatch
import shlex
from dataclasses import dataclass
from pathlib import Path

from standin_systemd import OS_UNITS

UNIT_DIR = "etc/systemd/system"
PRESET_DIR = "etc/systemd/system-preset"
DEFAULT_TARGET = "multi-user.target"
DEFAULT_TIMEOUT_START = 90.0


class UnitError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    path: str
    negate: bool
    trigger: bool

    def holds(self, root: Path) -> bool:
        return (root / self.path.lstrip("/")).exists() != self.negate

    def __str__(self) -> str:
        prefix = ("|" if self.trigger else "") + ("!" if self.negate else "")
        return f"ConditionPathExists={prefix}{self.path}"


@dataclass(frozen=True)
class UnitFile:
    service_type: str
    exec_start: tuple[tuple[str, tuple[str, ...]], ...]
    conditions: tuple[Condition, ...]
    wanted_by: tuple[str, ...]
    timeout_start: float | None
    environment: tuple[tuple[str, str], ...] = ()
    environment_files: tuple[str, ...] = ()

    def unmet_condition(self, root: Path) -> Condition | None:
        """systemd: every plain condition must hold, and one of the triggering ones if any."""
        plain = [c for c in self.conditions if not c.trigger]
        for condition in plain:
            if not condition.holds(root):
                return condition
        triggers = [c for c in self.conditions if c.trigger]
        if triggers and not any(c.holds(root) for c in triggers):
            return triggers[0]
        return None

    def runnable(self) -> UnitFile:
        """This unit, if the simulation can run its commands as systemd would; else UnitError."""
        if self.service_type != "oneshot":
            raise UnitError(f"Type={self.service_type}: only oneshot services are simulated")
        if not self.exec_start:
            raise UnitError("no ExecStart=")
        for prefix, _ in self.exec_start:
            if prefix.strip("-"):
                raise UnitError(f"ExecStart prefix {prefix!r} is not simulated")
        if self.environment_files:
            raise UnitError("EnvironmentFile= is not simulated")
        return self


def _seconds(value: str) -> float | None:
    if value == "infinity":
        return None
    units = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def _directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of each assignment, continuation lines joined."""
    section = ""
    found: list[tuple[str, str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise UnitError(f"not a key=value line: {line!r}")
        found.append((section, key.strip(), value.strip()))
    return found


def parse_unit(text: str, *dropins: str) -> UnitFile:
    """The parts of a service unit this simulation honours, from its file and drop-ins."""
    service_type = "simple"
    exec_start: list[tuple[str, tuple[str, ...]]] = []
    conditions: list[Condition] = []
    wanted_by: list[str] = []
    timeout_start: float | None = DEFAULT_TIMEOUT_START
    environment: dict[str, str] = {}
    environment_files: list[str] = []
    for section, key, value in [d for part in (text, *dropins) for d in _directives(part)]:
        if key.startswith(("Condition", "Assert")):
            if key != "ConditionPathExists":
                raise UnitError(f"the simulation does not evaluate {key}=")
            if not value:
                conditions.clear()
                continue
            trigger = value.startswith("|")
            value = value.lstrip("|")
            negate = value.startswith("!")
            conditions.append(Condition(value.lstrip("!"), negate, trigger))
        elif (section, key) == ("Service", "Type"):
            service_type = value
        elif (section, key) == ("Service", "ExecStart"):
            if not value:
                exec_start.clear()
                continue
            prefix = ""
            while value[:1] in ("-", "@", ":", "+", "!"):
                prefix += value[0]
                value = value[1:]
            exec_start.append((prefix, tuple(shlex.split(value))))
        elif (section, key) == ("Service", "Environment"):
            if not value:
                environment.clear()
            for assignment in shlex.split(value):
                name, _, setting = assignment.partition("=")
                environment[name] = setting
        elif (section, key) == ("Service", "EnvironmentFile"):
            environment_files.append(value)
        elif (section, key) in (("Service", "TimeoutStartSec"), ("Service", "TimeoutSec")):
            timeout_start = _seconds(value)
        elif (section, key) == ("Install", "WantedBy"):
            wanted_by += value.split()
    return UnitFile(
        service_type,
        tuple(exec_start),
        tuple(conditions),
        tuple(wanted_by),
        timeout_start,
        tuple(environment.items()),
        tuple(environment_files),
    )


def read_unit(root: Path, name: str) -> UnitFile:
    """A unit Ignition wrote under /etc/systemd/system, with its drop-ins."""
    path = root / UNIT_DIR / name
    dropin_dir = root / UNIT_DIR / f"{name}.d"
    dropins = sorted(dropin_dir.glob("*.conf")) if dropin_dir.is_dir() else []
    return parse_unit(path.read_text(), *(p.read_text() for p in dropins))


def masked(root: Path, name: str) -> bool:
    path = root / UNIT_DIR / name
    return path.is_symlink() and str(path.readlink()) == "/dev/null"


def unit_exists(root: Path, name: str) -> bool:
    """Loadable: Ignition's unit file, or one the Fedora CoreOS image ships."""
    return not masked(root, name) and ((root / UNIT_DIR / name).is_file() or name in OS_UNITS)


def preset_policy(root: Path, unit: str) -> str:
    """`enable` or `disable` from the first matching line of the presets, in file name order.

    Fedora CoreOS ends its presets with `disable *`; so does this, where nothing matches."""
    directory = root / PRESET_DIR
    for preset in sorted(directory.glob("*.preset")) if directory.is_dir() else []:
        for line in preset.read_text().splitlines():
            words = line.split()
            if (
                len(words) >= 2
                and words[0] in ("enable", "disable")
                and fnmatch.fnmatch(unit, words[1])
            ):
                return words[0]
    return "disable"


def first_boot_enablement(root: Path, units: tuple[str, ...]) -> dict[str, str]:
    """What the presets make of each unit on first boot: enabled, disabled or masked."""
    return {
        unit: "masked" if masked(root, unit) else f"{preset_policy(root, unit)}d" for unit in units
    }


def executable(root: Path, unit: UnitFile) -> bool:
    """Whether the program of the unit's (last) ExecStart= exists and may be run: systemd fails
    the unit with status 203/EXEC otherwise (systemd.exec(5), "Process Exit Codes")."""
    if not unit.exec_start:
        return False
    program = root / unit.exec_start[-1][1][0].lstrip("/")
    return program.is_file() and bool(program.stat().st_mode & 0o111)
