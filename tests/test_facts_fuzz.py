"""Property tests: random text and mutated real outputs never make an importer raise.

Every importer must turn anything into facts and problems; a problem's line must lie inside the
section it was given.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdiag.facts.importers import IMPORTERS
from netdiag.facts.importers.base import Fragment
from netdiag.facts.loader import load_text
from netdiag.facts.model import FactSet

FIX = Path(__file__).parent / "fixtures" / "facts"

#: real (or real-syntax) inputs of each importer, mutated by the tests
CORPUS = {
    "ip_addr": [
        "real/lb/ip_addr.txt",
        "real/rs/ip_o_addr.txt",
        "real/rs/ip_j_addr.txt",
        "real/rs/ip_br_addr.txt",
    ],
    "ip_link": ["real/rs/ip_d_link.txt", "real/rs/ip_o_link.txt", "real/rs/ip_br_link.txt"],
    "ip_route": ["real/lb/ip_route_all.txt", "real/lb/ip_j_route.txt"],
    "ip_rule": ["real/lb/ip_rule.txt"],
    "ip_neigh": ["real/lb/ip_neigh.txt", "real/lb/arp_n.txt"],
    "route_n": ["real/lb/route_n.txt"],
    "bridge_fdb": ["real/rs/bridge_fdb.txt", "real/rs/bridge_j_fdb.txt"],
    "sysctl": [
        "real/rs/sysctl_lines.txt",
        "real/rs/proc_sys.txt",
        "seeds/vip.seed004-proc-sys.txt",
    ],
    "ipvsadm": ["seeds/lb01.seed003-ipvsadm-ln.txt", "seeds/vip.seed004-ipvsadm.txt"],
    "keepalived": ["configs/director.keepalived.conf"],
    "strongswan_ipsec_conf": ["configs/vpngw.ipsec.conf"],
    "libreswan": ["configs/vpngw.libreswan.conf"],
    "swanctl": ["configs/vpngw.swanctl.conf"],
    "iptables_save": ["real/rs/iptables_save.txt", "real/gw/iptables_save_nat.txt"],
    "nft_ruleset": ["real/rs/nft_ruleset.txt", "real/lb/nft_ruleset.txt"],
    "ss": ["real/rs/ss_ltnp.txt"],
    "docker_network": ["configs/ecs3.docker-network-inspect.json"],
    "docker_daemon": ["configs/ecs3.daemon.json"],
    "topology_yaml": ["configs/cloud.topology.yaml"],
}
TEXTS = {name: [(FIX / rel).read_text("utf-8") for rel in rels] for name, rels in CORPUS.items()}
FUZZ = settings(
    max_examples=int(os.environ.get("NETDIAG_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_corpus_covers_every_importer() -> None:
    assert set(CORPUS) == set(IMPORTERS)


def _check(name: str, text: str, first_line: int = 7) -> None:
    frag = IMPORTERS[name].parse(text, "fuzz.txt", first_line)
    assert isinstance(frag, Fragment)
    last = first_line + max(len(text.splitlines()), 1)
    for problem in frag.problems:
        assert problem.file == "fuzz.txt"
        assert first_line <= problem.line <= last, (name, problem)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    """(importer name, one of its real inputs with lines dropped, doubled, cut or garbled)."""
    name = draw(st.sampled_from(sorted(TEXTS)))
    lines = draw(st.sampled_from(TEXTS[name])).splitlines()
    for _ in range(draw(st.integers(0, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "cut", "garble", "insert", "swap_words"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, max(len(lines[i]) - 1, 0)))]
        elif op == "garble":
            pos = draw(st.integers(0, max(len(lines[i]), 1)))
            junk = draw(st.text(min_size=1, max_size=8))
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=40)))
        else:
            words = lines[i].split()
            lines[i] = " ".join(draw(st.permutations(words))) if words else lines[i]
    if draw(st.booleans()) and lines:
        lines = lines[: draw(st.integers(0, len(lines)))]  # truncated paste
    return name, "\n".join(lines)


@FUZZ
@given(mutated())
def test_mutated_real_outputs_never_raise(case: tuple[str, str]) -> None:
    name, text = case
    _check(name, text)


@FUZZ
@given(st.sampled_from(sorted(IMPORTERS)), st.text(max_size=300))
def test_random_text_never_raises(name: str, text: str) -> None:
    _check(name, text)


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                "[root@h1 ~]# ip route",
                "root@h2:~# sysctl -a",
                "$ ipvsadm -Ln",
                "# ip -o addr",
                "default via 10.0.0.1 dev eth0",
                "net.ipv4.ip_forward = 1",
                "TCP  10.0.0.3:80 wrr",
                "  -> 10.0.0.7:80 Route 1 0 0",
                "conn x",
                "  leftsubnet=10.0.0.0/8",
                "{",
                "}",
                "",
                "version: 1",
                "hosts: [",
                "*nat",
                "-A POSTROUTING -j MASQUERADE",
                "table ip nat {",
            ]
        ),
        max_size=25,
    )
)
def test_random_transcripts_load_without_raising(lines: list[str]) -> None:
    facts = FactSet()
    problems: list = []  # type: ignore[type-arg]
    load_text("\n".join(lines), "t.txt", "t", facts, problems)
    for p in problems:
        assert 1 <= p.line <= max(len(lines), 1) + 1
        assert "internal error" not in p.message


def test_deeply_nested_documents_are_problems_not_crashes() -> None:
    for name in ("docker_network", "docker_daemon", "ip_addr", "ip_route", "ip_rule", "bridge_fdb"):
        frag = IMPORTERS[name].parse("[" * 50000, "deep.json", 1)
        assert frag.problems and "not valid JSON" in frag.problems[0].message
    frag = IMPORTERS["topology_yaml"].parse("a: " + "[" * 5000, "deep.yaml", 1)
    assert frag.problems and "not valid YAML" in frag.problems[0].message
    frag = IMPORTERS["topology_yaml"].parse(
        "version: 1\nhosts:\n  1: {}\n  ? [a]\n  : {}\n", "k.yaml", 1
    )
    assert frag.problems  # non-text keys: reported, never raised


def test_yaml_alias_bomb_is_refused_quickly() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        levels.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    frag = IMPORTERS["topology_yaml"].parse("\n".join(levels) + "\n", "bomb.yaml", 1)
    assert frag.problems and "aliases are expanded" in frag.problems[0].message
