"""The upstream charts the program installs (MetalLB, Envoy Gateway), taken at test time from
the Go modules of the releases it pins, never kept in this repository.

Both projects keep their charts in their Go module: go.universe.tf/metallb (charts/metallb) and
github.com/envoyproxy/gateway (charts/gateway-crds-helm, charts/gateway-helm). `go mod download
-json MODULE@VERSION` puts the module in the normal module cache (~/go/pkg/mod, or the cache
`go env GOMODCACHE` names) and tells its directory; the chart is then prepared, once, in
<tools cache>/charts/<chart>-<version>/ (the cache root scripts/tools uses, tests/real/
tool_cache.py cache_root), as each project's release prepares it:

- MetalLB publishes charts/metallb as it is in the tree, its subcharts charts/crds and
  charts/frr-k8s-<version>.tgz included (metallb/metallb charts/metallb/Chart.yaml `version` is
  the release's): copied as it is, README files left out.
- Envoy Gateway publishes what its release makes of charts/<name> (envoyproxy/gateway
  tools/make/helm.mk): `helm-generate` writes values.yaml from values.tmpl.yaml with envsubst
  (GatewayImage=docker.io/envoyproxy/gateway:<tag>, GatewayImagePullPolicy=IfNotPresent, the
  file's IMAGE_PULL_POLICY default), then `helm-package` runs `helm package charts/<name>
  --app-version <tag> --version <tag>` (CHART_VERSION is the release version). The same steps
  here, with the real envsubst (Debian's gettext-base) and the helm scripts/tools builds.

The versions are the program's own (stackconfig/releases.py, through the ReleaseSpec a test
passes); nothing here repeats one. What cannot be had fails loudly, with what to run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from go_modules import module_dir
from tool_cache import cache_root, require_tool

from stackconfig.releases import ReleaseSpec

# Envoy Gateway's image as its release writes it into values.yaml (tools/make/helm.mk
# helm-generate: GatewayImage=${IMAGE}:${TAG}; tools/make/env.mk: IMAGE ?=
# ${REGISTRY}/${IMAGE_NAME}, REGISTRY ?= docker.io/envoyproxy, IMAGE_NAME gateway on a release).
ENVOY_GATEWAY_IMAGE = "docker.io/envoyproxy/gateway"
ENVOY_GATEWAY_PULL_POLICY = "IfNotPresent"
COMPLETE = ".complete"


@dataclass(frozen=True)
class ChartSource:
    module: str
    # The chart's folder under the module's charts/.
    chart: str
    # Envoy Gateway's release steps (helm-generate, helm-package); MetalLB's chart is as it is.
    packaged_by_release: bool


CHART_SOURCES = {
    "metallb": ChartSource("go.universe.tf/metallb", "metallb", packaged_by_release=False),
    "gateway-api": ChartSource(
        "github.com/envoyproxy/gateway", "gateway-crds-helm", packaged_by_release=True
    ),
    "envoy-gateway": ChartSource(
        "github.com/envoyproxy/gateway", "gateway-helm", packaged_by_release=True
    ),
}


def module_version(release: ReleaseSpec) -> str:
    """The module version of a release's chart version: Envoy Gateway's charts carry the tag
    itself (v1.9.1); MetalLB's chart version is its tag without the v (0.16.2 for v0.16.2)."""
    return release.version if release.version.startswith("v") else f"v{release.version}"


def charts_cache() -> Path:
    return cache_root() / "charts"


def _ignore_readmes(directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "README.md"}


def envsubst(template: Path, target: Path, variables: dict[str, str]) -> None:
    """Debian's envsubst, with only the variables the release's make target sets."""
    program = shutil.which("envsubst")
    if program is None:
        raise RuntimeError("envsubst is not installed: apt-get install gettext-base")
    with template.open("rb") as source, target.open("wb") as output:
        subprocess.run(
            [program], stdin=source, stdout=output, env=variables, check=True, timeout=60
        )


def release_package(chart: Path, version: str, work: Path) -> Path:
    """Envoy Gateway's helm-generate and helm-package steps on a copy of the chart; the
    unpacked package."""
    template = chart / "values.tmpl.yaml"
    if template.is_file():
        envsubst(
            template,
            chart / "values.yaml",
            {
                "GatewayImage": f"{ENVOY_GATEWAY_IMAGE}:{version}",
                "GatewayImagePullPolicy": ENVOY_GATEWAY_PULL_POLICY,
            },
        )
    packages = work / "packages"
    argv = [
        str(require_tool("helm", "helm")),
        "package",
        str(chart),
        "--app-version",
        version,
        "--version",
        version,
        "--destination",
        str(packages),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    (package,) = packages.glob("*.tgz")
    unpacked = work / "unpacked"
    with tarfile.open(package) as archive:
        archive.extractall(unpacked, filter="data")
    return unpacked / chart.name


def prepare(source: ChartSource, version: str, target: Path) -> None:
    """The chart of `source` at `version`, prepared into `target` (which must not exist)."""
    started = time.monotonic()
    module = module_dir(source.module, version)
    origin = module / "charts" / source.chart
    if not (origin / "Chart.yaml").is_file():
        raise RuntimeError(f"{source.module}@{version} has no charts/{source.chart}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as work:
        copy = Path(work) / source.chart
        shutil.copytree(origin, copy, ignore=_ignore_readmes)
        # The module cache is read-only; the copy is ours to change.
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        chart = release_package(copy, version, Path(work)) if source.packaged_by_release else copy
        record = {
            "module": f"{source.module}@{version}",
            "chart": f"charts/{source.chart}",
            "packagedByRelease": source.packaged_by_release,
            "seconds": round(time.monotonic() - started, 1),
        }
        (chart / COMPLETE).write_text(json.dumps(record) + "\n")
        try:
            chart.rename(target)
        except OSError:
            # Another test process prepared it first: keep theirs.
            if not (target / COMPLETE).is_file():
                raise


def release_chart(release: ReleaseSpec) -> Path:
    """The directory of the real chart of one of the program's upstream releases, prepared
    once per version outside the clone."""
    source = CHART_SOURCES.get(release.name)
    if source is None:
        raise KeyError(f"no upstream chart source for release {release.name!r}")
    version = module_version(release)
    target = charts_cache() / f"{source.chart}-{version}"
    if not (target / COMPLETE).is_file():
        if target.exists():
            # An interrupted preparation (no marker): start again.
            shutil.rmtree(target)
        prepare(source, version, target)
    return target
