"""`ip route show table N` prints routes without `table N`: the table comes from the command."""

from __future__ import annotations

from pathlib import Path

from netdiag.facts.loader import load_facts

TRANSCRIPT = """\
[root@vpngw ~]# ip route show table 220
10.200.0.0/20 dev ipsec0 scope link
[root@vpngw ~]# ip route
default via 10.100.1.1 dev eth0
10.100.1.0/24 dev eth0 proto kernel scope link src 10.100.1.18
"""


def test_routes_of_a_named_table_keep_that_table(tmp_path: Path) -> None:
    path = tmp_path / "vpngw.txt"
    path.write_text(TRANSCRIPT)
    facts, problems = load_facts([path])
    assert problems == []
    routes = {(r.destination, r.table) for r in facts.hosts["vpngw"].routes}
    assert ("10.200.0.0/20", "220") in routes
    assert ("default", "main") in routes
    assert ("10.100.1.0/24", "main") in routes
