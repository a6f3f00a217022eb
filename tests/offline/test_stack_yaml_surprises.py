"""A value YAML typed where text was meant: the message says what YAML made of it, quotes the
value back as it was written, and suggests quoting it. Each case edits the example stack file's
text, since the surprise is in how the unquoted text is read.

PyYAML implements YAML 1.1 (yaml/pyyaml `lib/yaml/resolver.py`; the types at yaml.org/type/):
- int (yaml.org/type/int.html): decimal, `0o`-less octal `0755`, and base 60,
  `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`, so `10:20:30:40:50:59` is 10*60^5 + ... + 59, while a
  MAC with a hex letter, a leading 0, or a part above 59 stays text;
- float (yaml.org/type/float.html): `1.30` is 1.3;
- bool (yaml.org/type/bool.html): yes/no, on/off, true/false in three cases each;
- null (yaml.org/type/null.html): nothing, `~`, `null`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_paths import EXAMPLE_STACK_FILE

from stubernetes.cli import EXIT_BAD_INPUT, main

W1_MAC = "      mac: 52:54:00:a1:00:02\n"
W1_LABEL = "        stubernetes.dev/storage: local\n"
VERSION = '    kubernetesVersion: "1.36.4"\n'
OS_VERSION = "    version: 44.20260817.3.2\n"


def render_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str
) -> tuple[int, list[str]]:
    text = EXAMPLE_STACK_FILE.read_text()
    assert old in text
    stack_file = tmp_path / "Pulumi.edited.yaml"
    stack_file.write_text(text.replace(old, new, 1))
    out = tmp_path / "out"
    status = main(["render", "--stack-file", str(stack_file), "--out", str(out)])
    assert not out.exists()
    return status, capsys.readouterr().err.splitlines()


def test_unquoted_mac_read_as_base_60_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, errors = render_edited(tmp_path, capsys, W1_MAC, "      mac: 10:20:30:40:50:59\n")
    number = ((((10 * 60 + 20) * 60 + 30) * 60 + 40) * 60 + 50) * 60 + 59
    assert status == EXIT_BAD_INPUT
    assert errors == [
        f"error: machine 'w1': field 'mac': YAML read the unquoted value as the base-60 number "
        f'{number}; quote it: mac: "10:20:30:40:50:59"'
    ]


def test_unquoted_mac_with_a_leading_zero_part_keeps_its_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The number cannot say whether a part was written 09 or 9; the stack file's text can.
    status, errors = render_edited(tmp_path, capsys, W1_MAC, "      mac: 12:34:56:07:08:09\n")
    assert status == EXIT_BAD_INPUT
    assert len(errors) == 1
    assert errors[0].endswith('quote it: mac: "12:34:56:07:08:09"')


def test_unquoted_mac_with_hex_letters_or_leading_zero_is_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not an int to YAML 1.1: the example's own unquoted MACs are fine.
    text = EXAMPLE_STACK_FILE.read_text()
    text = text.replace(W1_MAC, "      mac: 02:54:00:11:22:33\n")
    stack_file = tmp_path / "Pulumi.text.yaml"
    stack_file.write_text(text)
    status = main(["urn", "--stack-file", str(stack_file), "--machine", "w1"])
    assert status == 0, capsys.readouterr().err


def test_unquoted_version_read_as_float(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, errors = render_edited(tmp_path, capsys, VERSION, "    kubernetesVersion: 1.30\n")
    assert status == EXIT_BAD_INPUT
    assert errors == [
        "error: stubernetes:cluster: field 'kubernetesVersion': YAML read 1.30 as the number "
        '1.3; quote it: kubernetesVersion: "1.30"'
    ]


BOOLEANS = [("yes", "true"), ("no", "false"), ("on", "true"), ("true", "true"), ("Off", "false")]


@pytest.mark.parametrize(("written", "boolean"), BOOLEANS)
def test_unquoted_label_value_read_as_boolean(
    written: str, boolean: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = f"        stubernetes.dev/storage: {written}\n"
    status, errors = render_edited(tmp_path, capsys, W1_LABEL, new)
    assert status == EXIT_BAD_INPUT
    assert errors == [
        f"error: machine 'w1': field 'labels.stubernetes.dev/storage': YAML read the unquoted "
        f'value {written} as the boolean {boolean}; quote it: stubernetes.dev/storage: "{written}"'
    ]


def test_unquoted_label_value_read_as_int(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = "        stubernetes.dev/port: 8080\n"
    status, errors = render_edited(tmp_path, capsys, W1_LABEL, new)
    assert status == EXIT_BAD_INPUT
    assert errors == [
        "error: machine 'w1': field 'labels.stubernetes.dev/port': YAML read the unquoted value "
        '8080 as the number 8080; quote it: stubernetes.dev/port: "8080"'
    ]


def test_unquoted_octal_label_value_shows_both_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = "        stubernetes.dev/mode: 0755\n"
    status, errors = render_edited(tmp_path, capsys, W1_LABEL, new)
    assert status == EXIT_BAD_INPUT
    assert len(errors) == 1
    assert "YAML read the unquoted value 0755 as the number 493" in errors[0]


def test_empty_label_value_read_as_null(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = "        stubernetes.dev/storage:\n"
    status, errors = render_edited(tmp_path, capsys, W1_LABEL, new)
    assert status == EXIT_BAD_INPUT
    assert errors == [
        "error: machine 'w1': field 'labels.stubernetes.dev/storage': YAML read the value as "
        "null (nothing, '~' or 'null' was written); give it a value (an empty one is "
        'stubernetes.dev/storage: "")'
    ]


def test_number_in_a_list_of_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = W1_LABEL + "      kernelArgs: [quiet, 3]\n"
    status, errors = render_edited(tmp_path, capsys, W1_LABEL, new)
    assert status == EXIT_BAD_INPUT
    assert errors == [
        "error: machine 'w1': field 'kernelArgs[1]': YAML read the unquoted value 3 as the "
        'number 3; quote it: "3"'
    ]


def test_unquoted_os_version_read_as_float(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, errors = render_edited(tmp_path, capsys, OS_VERSION, "    version: 42.20\n")
    assert status == EXIT_BAD_INPUT
    assert errors == [
        "error: stubernetes:os: field 'version': YAML read 42.20 as the number 42.2; "
        'quote it: version: "42.20"'
    ]


def test_unquoted_date_read_as_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, errors = render_edited(tmp_path, capsys, OS_VERSION, "    version: 2025-07-21\n")
    assert status == EXIT_BAD_INPUT
    assert errors == [
        "error: stubernetes:os: field 'version': YAML read the unquoted value 2025-07-21 as a "
        'date; quote it: version: "2025-07-21"'
    ]


def test_quoted_values_are_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE_STACK_FILE.read_text()
    text = text.replace(W1_MAC, '      mac: "10:20:30:40:50:59"\n')
    text = text.replace(W1_LABEL, '        stubernetes.dev/storage: "yes"\n')
    text = text.replace(VERSION, '    kubernetesVersion: "1.36"\n')
    stack_file = tmp_path / "Pulumi.quoted.yaml"
    stack_file.write_text(text)
    # `urn` loads and checks the stack like `render` does, without rendering it.
    status = main(["urn", "--stack-file", str(stack_file), "--machine", "w1"])
    assert status == 0, capsys.readouterr().err


def test_unquoted_boolean_where_a_choice_is_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = "      role: worker\n      installDisk: /dev/sda\n"
    status, errors = render_edited(tmp_path, capsys, old, old.replace("worker", "yes"))
    assert status == EXIT_BAD_INPUT
    assert errors == [
        "error: machine 'w1': field 'role': should be 'controller' or 'worker', got True "
        "(YAML read the unquoted value yes as the boolean true)"
    ]
