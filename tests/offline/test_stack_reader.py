"""The stack file's reader within its limits, and the program's config within the same ones.

The attacks themselves are stack files under bad-stacks/reader/ (test_bad_stacks.py
runs them in a child process with a time limit). Here: the limits measured against a
500-machine stack, the size limit on a file too large to commit, the composer's own count,
nesting right at the limit, the anchors and merge keys real stacks use, and the program's path:
Pulumi's config as JSON text (pulumi/pulumi sdk/python `lib/pulumi/runtime/config.py`).

PyYAML's implicit types, which the reader refuses in names and in keys whose meaning they
change, are its resolver's: yaml/pyyaml `lib/yaml/resolver.py`.
"""

from __future__ import annotations

import json
import runpy
import time
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from repo_paths import EXAMPLE_STACK_FILE, REPO

from stackconfig import parse_stack_config
from stackconfig.config_keys import key_typos
from stackconfig.parse import KNOWN_KEYS
from stackconfig.problems import ConfigError
from stackconfig.stackfile import read_stack_file
from stackconfig.yaml_limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES
from stackconfig.yaml_nodes import measure
from stubernetes.cli import EXIT_BAD_INPUT, main
from stubernetes.mocks import RecordingMonitor, StandInMocks
from stubernetes.program_run import pulumi_config_env, run_under_mocks

EXAMPLE = EXAMPLE_STACK_FILE.read_text()
MACHINES = "  stubernetes:machines:\n"


def machine_yaml(index: int) -> str:
    """One machine with every optional field a real machine has filled."""
    role = "controller" if index < 3 else "worker"
    high, low = divmod(index + 1, 250)
    return (
        f"    node-{index:03d}:\n"
        f"      mac: 52:54:00:b{high}:{low:02x}:01\n"
        f"      role: {role}\n"
        "      installDisk: /dev/disk/by-path/pci-0000:00:04.0\n"
        f"      address: 172.16.{high}.{low + 2}/16\n"
        "      gateway: 172.16.0.1\n"
        "      dns: [172.16.0.1, 172.16.9.1]\n"
        "      labels:\n"
        "        stubernetes.dev/storage: local\n"
        f"        topology.kubernetes.io/zone: rack-{index % 20:02d}\n"
        "        example.com/tier: general\n"
        "      taints:\n"
        "        - key: example.com/dedicated\n"
        "          value: batch\n"
        "          effect: NoSchedule\n"
        "      kernelArgs: [console=ttyS0,115200n8, mitigations=auto]\n"
        "      bmc:\n"
        "        kind: redfish\n"
        f"        address: 172.17.{high}.{low + 2}\n"
        "        user: admin\n"
        "        password:\n"
        "          secure: v1:AAABAFqyZ2hpfjkXk0KHgfGNx6WrK9UqRmb3rB2xNXW1bMC+Qx4/V8BqrbAZ\n"
    )


def stack_of(machines: int) -> str:
    head = EXAMPLE.split(MACHINES)[0].replace("192.168.10.11:6443", "api.lab.home.arpa:6443")
    # The machines' subnet here is 172.16.0.0/16 (machine_yaml): the pool goes with it.
    head = head.replace("192.168.10.240-192.168.10.250", "172.16.255.240-172.16.255.250")
    return head + MACHINES + "".join(machine_yaml(i) for i in range(machines))


def write(tmp_path: Path, text: str, name: str = "Pulumi.test.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    status = main(["check", "--stack-file", str(path)])
    return status, capsys.readouterr().err.splitlines()


def test_limits_leave_a_wide_margin_over_a_500_machine_stack(tmp_path: Path) -> None:
    path = write(tmp_path, stack_of(500))
    started = time.monotonic()
    read = read_stack_file(path)
    seconds = time.monotonic() - started
    assert len(parse_stack_config(read.values, read.yaml_texts).machines) == 500
    root = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    assert root is not None
    graph = measure(root)
    size, values, depth = path.stat().st_size, graph.size[id(root)], graph.height[id(root)]
    # The figures stackconfig/yaml_limits.py and the messages quote: 345 KB, 25,000, 6.
    assert abs(size - 345_000) < 10_000, size
    assert abs(values - 25_000) < 500, values
    assert depth == 6
    assert size * 6 <= MAX_FILE_BYTES
    assert values * 9 < MAX_VALUES
    assert depth * 10 <= MAX_DEPTH
    print(
        f"500 machines: {size:,} bytes, {values:,} values, depth {depth}, read in {seconds:.1f} s"
    )


def test_a_file_past_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Too large to commit: generated here. A comment fills it, so only its size is wrong.
    path = tmp_path / "Pulumi.huge.yaml"
    path.write_bytes(EXAMPLE.encode() + b"#" * (MAX_FILE_BYTES - len(EXAMPLE.encode())) + b"\n")
    assert path.stat().st_size == MAX_FILE_BYTES + 1
    started = time.monotonic()
    status, errors = errors_of(path, capsys)
    assert time.monotonic() - started < 5
    assert status == EXIT_BAD_INPUT
    assert errors == [
        f"error: {path}: larger than 2 MiB (2,097,152 bytes), the most a stack file may be "
        "(a 500-machine stack is 345 KB); is it the right file?"
    ]


def test_a_file_right_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.full.yaml"
    path.write_bytes(EXAMPLE.encode() + b"#" * (MAX_FILE_BYTES - len(EXAMPLE.encode()) - 1) + b"\n")
    assert path.stat().st_size == MAX_FILE_BYTES
    assert sorted(read_stack_file(path).values["machines"]) == ["c1", "w1", "w2"]


def test_the_composer_stops_counting_at_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file crammed with tiny values stops where the count passes the limit, before the rest
    # of it is composed: shown with a limit of 1,000 so that the file stays small.
    monkeypatch.setattr("stackconfig.yaml_reader.MAX_VALUES", 1000)
    values = "  stubernetes:releases:\n    envoy-gateway:\n      values:\n        many:\n"
    many = "".join(f"          - {i}\n" for i in range(2000))
    path = write(tmp_path, EXAMPLE + values + many)
    status, errors = errors_of(path, capsys)
    assert status == EXIT_BAD_INPUT
    # Nodes are counted in document order: the example's, then 8 for the keys, maps and list
    # leading to the items, then one an item; the 1,001st node is on the line printed.
    example = yaml.compose(EXAMPLE, Loader=yaml.SafeLoader)
    assert example is not None
    item = 1001 - measure(example).size[id(example)] - 8
    line = (EXAMPLE + values).count("\n") + item
    assert errors == [
        f"error: {path}:{line}: more than 1,000 values (keys, values, lists and maps) by here; "
        "a 500-machine stack has 25,000"
    ]


def nested_values(levels: int) -> str:
    """Release values nested so that the document has `levels` levels of lists and maps: the
    document, config, releases, the release and its values are 5 of them."""
    lists = levels - 5
    return (
        "  stubernetes:releases:\n    envoy-gateway:\n      values:\n        deep: "
        + "[" * lists
        + "x"
        + "]" * lists
        + "\n"
    )


def test_nesting_right_at_the_limit_is_read_and_walked(tmp_path: Path) -> None:
    # Composed, constructed, then walked recursively again (secure values, source texts): each
    # stays far below Python's recursion limit at the deepest nesting the reader lets through.
    read = read_stack_file(write(tmp_path, EXAMPLE + nested_values(MAX_DEPTH)))
    deep = read.values["releases"]["envoy-gateway"]["values"]["deep"]
    levels = 0
    while isinstance(deep, list):
        deep, levels = deep[0], levels + 1
    assert (levels, deep) == (MAX_DEPTH - 5, "x")


def test_nesting_one_past_the_limit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, EXAMPLE + nested_values(MAX_DEPTH + 1))
    status, errors = errors_of(path, capsys)
    assert status == EXIT_BAD_INPUT
    assert len(errors) == 1
    assert errors[0].startswith(
        "error: release 'envoy-gateway': field 'values.deep[0][0][0][0][0][0]...': lists and "
        "maps nest more than 64 levels deep here"
    )


def test_a_long_alias_chain_is_refused_for_depth_and_size_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1,500 anchors, each an alias of the one before: written flat, 1,500 levels deep once
    # expanded, and 1.1 million values; the old reader's recursive walks ran out of stack.
    links = "".join(f"        l{i}: &l{i} [*l{i - 1}]\n" for i in range(1, 1500))
    values = "  stubernetes:releases:\n    envoy-gateway:\n      values:\n        l0: &l0 [x]\n"
    status, errors = errors_of(write(tmp_path, EXAMPLE + values + links), capsys)
    assert status == EXIT_BAD_INPUT
    assert len(errors) == 2
    assert "its aliases expand to more than 250,000 values" in errors[0]
    assert "lists and maps nest more than 64 levels deep here, aliases followed" in errors[1]


def test_anchors_aliases_and_merge_keys_as_real_stacks_use_them(tmp_path: Path) -> None:
    text = EXAMPLE.replace("      dns: [192.168.10.1]\n", "      dns: &dns [192.168.10.1]\n", 1)
    text = text.replace(
        "    w1:\n      mac: 52:54:00:a1:00:02\n      role: worker\n      installDisk: /dev/sda\n"
        "      address: 192.168.10.21/24\n      gateway: 192.168.10.1\n"
        "      dns: [192.168.10.1]\n",
        "    w1: &worker\n      mac: 52:54:00:a1:00:02\n      role: worker\n"
        "      installDisk: /dev/sda\n      address: 192.168.10.21/24\n"
        "      gateway: 192.168.10.1\n      dns: *dns\n",
    )
    text = text.replace(
        "    w2:\n      mac: 52-54-00-A1-00-03\n      role: worker\n",
        "    w2:\n      <<: *worker\n      mac: 52-54-00-A1-00-03\n"
        "      address: 192.168.10.22/24\n",
    )
    assert text.count("*") == 2
    read = read_stack_file(write(tmp_path, text))
    stack = parse_stack_config(read.values, read.yaml_texts)
    w1, w2 = stack.machines[1:]
    assert w2.role == "worker" and w2.labels == w1.labels and w2.gateway == w1.gateway
    assert str(w2.address) == "192.168.10.22/24" and w2.install_disk == "/dev/nvme0n1"
    assert [str(d) for d in w2.dns] == ["192.168.10.1"]


def test_a_decimal_key_in_release_values_keeps_its_meaning(tmp_path: Path) -> None:
    # A chart's values may write ports as keys unquoted: 8080 is "8080" to JSON too.
    values = "  stubernetes:releases:\n    envoy-gateway:\n      values:\n        tcp:\n"
    read = read_stack_file(write(tmp_path, EXAMPLE + values + "          8080: default/web:80\n"))
    assert read.values["releases"]["envoy-gateway"]["values"] == {"tcp": {8080: "default/web:80"}}


def test_a_utf_8_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.encode())
    assert sorted(read_stack_file(path).values["machines"]) == ["c1", "w1", "w2"]


def test_a_utf_16_file_is_named_as_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Pulumi.utf16.yaml"
    path.write_bytes(EXAMPLE.encode("utf-16"))
    status, errors = errors_of(path, capsys)
    assert status == EXIT_BAD_INPUT
    assert errors == [
        f"error: {path}:1: not UTF-8 text: the byte 0xff at byte offset 0 (a UTF-16 byte order "
        "mark) is not UTF-8 (invalid start byte); save the file as UTF-8"
    ]


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("stubrnetes:releases", "stubernetes:releases"),
        ("stubernets:machines", "stubernetes:machines"),
        ("Stubernetes:cluster", "stubernetes:cluster"),
        ("stubernetes:machine", "stubernetes:machines"),
        ("machines", "stubernetes:machines"),
    ],
)
def test_a_near_miss_of_the_namespace_is_refused_and_read_as_meant(key: str, meant: str) -> None:
    typos = key_typos([key, "kubernetes:context"], KNOWN_KEYS)
    assert [problem.where for _, problem in typos.problems] == [key]
    assert typos.problems[0][1].message.endswith(f"did you mean '{meant}'?")
    assert typos.renamed == {key: meant}


@pytest.mark.parametrize(
    "key",
    [
        "kubernetes:context",
        "kubernetes:cluster",  # one letter from stubernetes:cluster, and the provider's own
        "kubernets:context",  # closer to kubernetes than to stubernetes: not ours to judge
        "pulumi:tags",
        "command:interpreter",
        "matchbox:endpoint",
        "aws:region",
        "stubernetes:zone",  # ours, unlike any known key: the parser's unknown key
    ],
)
def test_other_namespaces_keys_stay_allowed(key: str) -> None:
    assert key_typos([key], KNOWN_KEYS).problems == []


# The program's path: Pulumi hands the config as JSON text, one value per key.

SECRET_KEYS = json.dumps(["stubernetes:matchbox"])


def run_program_with(
    config: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    monitor: RecordingMonitor | None = None,
) -> RecordingMonitor:
    """Run __main__.py under the SDK's mocks with `config` as PULUMI_CONFIG, as the language
    host passes it; return what it registered."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", SECRET_KEYS)
    monkeypatch.chdir(REPO)
    monitor = monitor or RecordingMonitor(StandInMocks("x"))

    def program() -> None:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")

    run_under_mocks(program, monitor, "test")
    return monitor


def example_config(example_values: dict[str, Any]) -> dict[str, str]:
    config: dict[str, str] = json.loads(pulumi_config_env(example_values))
    return config


def test_the_program_refuses_a_misspelt_namespace_before_registering_anything(
    example_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = example_config(example_values)
    config["stubrnetes:releases"] = json.dumps({"openebs": {"enabled": False}})
    config["kubernetes:context"] = "lab"
    config["pulumi:tags"] = json.dumps({"team": "home"})
    monitor = RecordingMonitor(StandInMocks("x"))
    with pytest.raises(pulumi.RunError) as raised:
        run_program_with(config, monkeypatch, monitor)
    assert str(raised.value).splitlines()[1:] == [
        "stubrnetes:releases: a namespace close to 'stubernetes', whose keys the program would "
        "ignore; did you mean 'stubernetes:releases'?"
    ]
    assert monitor.registrations == []


def test_the_program_names_a_machine_twice_in_its_json(
    example_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = example_config(example_values)
    w1 = json.dumps(example_values["machines"]["w1"])
    config["stubernetes:machines"] = config["stubernetes:machines"][:-1] + f', "w1": {w1}}}'
    with pytest.raises(pulumi.RunError) as raised:
        run_program_with(config, monkeypatch)
    assert str(raised.value).splitlines()[1:] == [
        "machine 'w1': field 'name': duplicate machine name (JSON would keep only the last one)"
    ]


def test_the_program_names_a_repeated_key_in_release_values(
    example_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = example_config(example_values)
    config["stubernetes:releases"] = '{"openebs": {"values": {"a": 1, "a": 2}}}'
    with pytest.raises(pulumi.RunError) as raised:
        run_program_with(config, monkeypatch)
    assert str(raised.value).splitlines()[1:] == [
        "release 'openebs': field 'values.a': duplicate key; JSON would keep only the last one"
    ]


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 100_000], ids=["past-the-limit", "100000"])
def test_the_program_refuses_json_nested_too_deep(
    levels: int, example_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100,000 levels is past Python's recursion limit, where json.loads raises RecursionError.
    config = example_config(example_values)
    config["stubernetes:releases"] = '{"openebs": {"values": ' + "[" * levels + "]" * levels + "}}"
    with pytest.raises(pulumi.RunError) as raised:
        run_program_with(config, monkeypatch)
    (line,) = str(raised.value).splitlines()[1:]
    assert line.endswith(": lists and maps nest more than 64 levels deep"), line


def test_the_program_runs_beside_other_namespaces_keys(
    example_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = example_config(example_values)
    config["kubernetes:context"] = "lab"
    config["kubernetes:cluster"] = "lab"
    config["pulumi:tags"] = json.dumps({"team": "home"})
    monitor = run_program_with(config, monkeypatch)
    assert monitor.registrations


def test_a_config_error_lists_every_yaml_problem_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.replace("    w1:\n", "    012:\n").replace("    w2:\n", "    on:\n")
    status, errors = errors_of(write(tmp_path, text), capsys)
    assert status == EXIT_BAD_INPUT
    assert [line.split(": field")[0] for line in errors] == [
        "error: machine '012'",
        "error: machine 'on'",
    ]


def test_config_error_is_raised_not_a_yaml_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        read_stack_file(write(tmp_path, EXAMPLE + "---\n"))
    assert "a second YAML document starts here" in str(raised.value)
