"""The intranet install, shown: the `make dist` bundle installed into a clean venv with no package index, then
a collector and an agent from that venv on two hosts (network namespaces joined by a veth pair). The link is cut
and restored, then answers are lost one way while the collector restarts; every result reaches the store once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.spool import Spool
from tests.conftest import ROOT, require
from tests.e2e.harness import Process, steady_pack, wait_for
from tests.e2e.netns import Host, Link, two_hosts, why_no_namespaces

pytestmark = pytest.mark.e2e

EXTRAS = "oracle,odbc,postgres,mysql,dicom"


def clean_env() -> dict[str, str]:
    """No PYTHONPATH (the source tree must not shadow the installed package) and no pip configuration, so the
    only place pip can find anything is the wheelhouse it is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    return dict(env, PIP_CONFIG_FILE=os.devnull, PYTHONUNBUFFERED="1")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle unpacked, its checksums verified, and xunjian with every driver installed offline."""
    bundles = list(dist.glob("xunjian-*.tar.gz"))
    assert len(bundles) == 1, f"expected one bundle in {dist}, found {bundles}"
    where = tmp_path_factory.mktemp("intranet-host")
    with tarfile.open(bundles[0]) as tar:
        tar.extractall(where, filter="data")
    (unpacked,) = where.iterdir()
    for shipped in ("deploy/systemd/xunjian-agent.service", "deploy/systemd/xunjian-collector.service",
                    "deploy/examples/agent.yaml", "deploy/examples/collector.yaml", "docs/deploy.md", "INSTALL.txt",
                    "docs/dashboards.md", "dashboards/json/xunjian-wall.json", "dashboards/rules/xunjian.rules.yml"):
        assert (unpacked / shipped).is_file(), f"the bundle lacks {shipped}"
    run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=unpacked / "wheelhouse")

    target = where / "opt-xunjian"
    run([sys.executable, "-m", "venv", str(target)], cwd=where)
    run([str(target / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(unpacked / "wheelhouse"),
         f"xunjian[{EXTRAS}]"], cwd=where)
    run([str(target / "bin" / "pip"), "check"], cwd=where)
    return target


def test_bundle_installs_offline_with_every_driver(venv: Path) -> None:
    python = str(venv / "bin" / "python")
    probe = ("import collector, oracledb, pyodbc, psycopg, pymysql, pynetdicom, xunjian; "
             "print(collector.__file__); print(xunjian.__version__)")
    out = run([python, "-c", probe], cwd=venv).stdout.splitlines()
    assert out[0].startswith(str(venv)), f"collector imported from {out[0]}, not from the installed venv"
    version = run([str(venv / "bin" / "xunjian"), "--version"], cwd=venv).stdout
    assert out[1] in version


@dataclass
class Installed(Process):
    """A daemon from the installed venv, run inside a namespace, away from the source tree."""

    cwd: Path = Path("/")

    def start(self) -> Installed:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=clean_env(),
                                         cwd=self.cwd)
        return self


@dataclass
class Site:
    """The collector and agent hosts of one test, with what is needed to read the collector's API."""

    collector_host: Host
    agent_host: Host
    link: Link
    collector: Installed
    agent: Installed
    spool: Path

    def api(self, path: str) -> Any:
        return json.loads(self.collector_host.fetch(f"http://127.0.0.1:9471{path}"))

    def healthy(self) -> bool:
        try:
            return bool(self.api("/healthz").get("status") == "ok")
        except (OSError, ValueError):
            return False

    def hwm(self) -> int:
        """The highest seq of the agent the collector has stored (0 before its first batch)."""
        agents = [a for a in self.api("/api/v1/agents") if a["id"] == "his-app-01"]
        return int(agents[0]["high_water_seq"]) if agents else 0

    def spooled(self) -> int:
        """The newest seq the agent has assigned (its spool survives the agent and the link)."""
        spool = Spool(self.spool)
        try:
            return spool.last_seq
        finally:
            spool.close()

    def seqs(self) -> list[int]:
        out: list[int] = []
        while page := self.api(f"/api/v1/results?agent=his-app-01&after_seq={out[-1] if out else 0}&limit=10000"):
            out.extend(int(r["seq"]) for r in page)
        return out

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.output()[-4000:]}" for p in (self.collector, self.agent))


@pytest.fixture
def site(venv: Path, tmp_path: Path) -> Iterator[Site]:
    missing = why_no_namespaces()
    require(missing is None, str(missing))
    xunjian = str(venv / "bin" / "xunjian")
    # The shipped example, as an operator would use it, with the store in the test's directory and every
    # result kept, so the test can count them.
    collector_cfg = yaml.safe_load((ROOT / "deploy/examples/collector.yaml").read_text())
    collector_cfg["store"].update(url=f"sqlite:///{tmp_path / 'collector.db'}", history="all")
    # mTLS across the two hosts, as deployed: the collector's CA, a server certificate for its address, and the
    # agent enrolled with a single-use token. The API stays on the collector host's loopback, unauthenticated.
    collector_cfg["tls"].update(dir=str(tmp_path / "pki"), server_names=["192.0.2.1"])
    collector_cfg["http"] = {"auth": "none"}
    (tmp_path / "collector.yaml").write_text(yaml.safe_dump(collector_cfg))
    (tmp_path / "agent").mkdir()
    for command in (["ca", "init"], ["agents", "enroll", "his-app-01"]):
        done = subprocess.run([xunjian, *command, "--config", str(tmp_path / "collector.yaml")], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    (tmp_path / "agent" / "enroll.token").write_text(done.stdout.strip() + "\n")
    shutil.copy(tmp_path / "pki" / "ca.crt", tmp_path / "agent" / "ca.crt")
    (tmp_path / "agent" / "steady.yaml").write_text(steady_pack())
    (tmp_path / "agent" / "agent.yaml").write_text(
        "agent: {id: his-app-01, labels: {site: e2e}}\n"
        'collector: {addresses: ["192.0.2.1:9470"], heartbeat_interval: 1s, batch_wait: 50ms,'
        " connect_timeout: 1s, reconnect: {initial: 100ms, max: 1s}}\n"
        "spool: {path: spool.db, max_bytes: 64MiB}\n"
        "packs: [steady.yaml]\n"
    )
    with two_hosts() as (collector_host, agent_host, link):
        collector = Installed(name="collector", log=tmp_path / "collector.log", cwd=tmp_path,
                              args=collector_host.command([xunjian, "collector", "serve", "--config",
                                                           str(tmp_path / "collector.yaml")]))
        agent = Installed(name="agent", log=tmp_path / "agent.log", cwd=tmp_path,
                          args=agent_host.command([xunjian, "agent", "run", "--config",
                                                   str(tmp_path / "agent" / "agent.yaml")]))
        s = Site(collector_host, agent_host, link, collector, agent, tmp_path / "agent" / "spool.db")
        try:
            yield s
        except BaseException:
            print(s.logs())
            raise
        finally:
            agent.stop()
            collector.stop()


def test_agent_and_collector_on_two_hosts_lose_nothing_across_link_faults(site: Site) -> None:
    site.collector.start()
    wait_for(site.healthy, timeout=30, what=f"collector healthy; log:\n{site.collector.output()}")
    site.agent.start()
    wait_for(lambda: site.hwm() > 20, timeout=30, what="results stored across the link")
    agent = site.api("/api/v1/agents")[0]
    assert agent["connected"] and agent["labels"] == {"site": "e2e"}
    assert 'agent="his-app-01"' in site.collector_host.fetch("http://127.0.0.1:9471/metrics").decode()

    # The cable pulled: the agent keeps checking into its spool while nothing gets through.
    site.link.cut()
    stalled = site.hwm()
    wait_for(lambda: site.spooled() > stalled + 50, timeout=30, what="the agent spooling while cut off")
    assert site.hwm() < site.spooled() - 40, "results reached the collector through a cut link"
    site.link.restore()
    during_cut = site.spooled()
    wait_for(lambda: site.hwm() >= during_cut, timeout=60, what="everything spooled during the cut delivered")

    # Answers lost one way: what the agent sends is stored, but no acknowledgement gets back; the collector
    # restarts meanwhile, so the agent must reconnect and learn from the handshake what is already stored.
    site.link.drop_replies()
    unacked_from = site.hwm()
    wait_for(lambda: site.hwm() > unacked_from, timeout=30, what="results stored while answers are lost")
    assert site.collector.stop() == 0, site.collector.output()
    site.collector.start()
    wait_for(site.healthy, timeout=30, what="collector back after its restart")
    restarted = site.spooled()
    wait_for(lambda: site.spooled() > restarted + 25, timeout=30, what="the agent spooling, its connects unanswered")
    site.link.restore_replies()
    during_loss = site.spooled()
    wait_for(lambda: site.hwm() >= during_loss, timeout=60, what="the agent reconnected and caught up")
    assert site.api("/api/v1/agents")[0]["connected"]
    site.agent.stop()

    seqs = site.seqs()
    assert len(seqs) == len(set(seqs)), f"stored twice: {sorted({s for s in seqs if seqs.count(s) > 1})[:10]}"
    top = site.hwm()
    missing = sorted(set(range(1, top + 1)) - set(seqs))
    assert not missing, f"{len(missing)} results never stored, e.g. {missing[:10]}"
    assert top >= during_loss
