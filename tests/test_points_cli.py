"""`netdiag analyze` with several capture points: --point NAME=FILE, case folders, their errors."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdiag.case import expand_case, is_capture
from netdiag.cli.analyze import parse_points
from netdiag.cli.main import app
from netdiag.errors import NetdiagError

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "nat-gateway" / "faulty-rs-gateway"
CLIENT = SAMPLE / "client-eth0.pcap"
DIRECTOR = SAMPLE / "director.pcapng"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("netdiag: error: ") and "Traceback" not in stderr
    return lines[0]


# --- --point -------------------------------------------------------------------------------------
def test_parse_points_names_captures_and_adds_missing_ones(tmp_path: Path) -> None:
    captures = [str(CLIENT)]
    names = parse_points([f"dir=  {DIRECTOR}", f"client={CLIENT}"], captures)
    assert names == {str(DIRECTOR): "dir", str(CLIENT): "client"}
    assert captures == [str(CLIENT), str(DIRECTOR)]  # FILE not given as an argument: analysed too
    # the same file under another spelling is the same capture
    link = tmp_path / "c.pcap"
    link.symlink_to(CLIENT)
    captures = [str(CLIENT)]
    assert parse_points([f"edge={link}"], captures) == {str(CLIENT): "edge"}
    assert captures == [str(CLIENT)]
    # only the first "=" splits: the file name keeps the others
    captures = []
    assert parse_points(["a=x=y.pcap"], captures) == {"x=y.pcap": "a"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["client"], "--point wants NAME=FILE, not 'client'"),
        (["=x.pcap"], "--point wants NAME=FILE, not '=x.pcap'"),
        (["client="], "--point wants NAME=FILE, not 'client='"),
        ([f"a={CLIENT}", f"a={DIRECTOR}"], "--point name 'a' is given twice"),
        ([f"a={CLIENT}", f"b={CLIENT}"], "names this capture twice ('a')"),
        ([f"a={SAMPLE}"], "names one capture file, not a folder"),
    ],
)
def test_parse_points_refuses_bad_forms(options: list[str], message: str) -> None:
    with pytest.raises(NetdiagError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_points(options, [])


@pytest.mark.parametrize(
    "args",
    [
        ("--point", "client"),
        ("--point", f"a={CLIENT}", "--point", f"a={DIRECTOR}"),
        ("--point", f"x={SAMPLE}"),
    ],
)
def test_cli_point_errors_are_one_line(args: tuple[str, ...]) -> None:
    code, out, err = _run("analyze", str(CLIENT), *args)
    assert code == 2 and out == ""
    assert "--point" in _one_error_line(err)


def test_cli_point_missing_file_is_one_line() -> None:
    code, _, err = _run("analyze", str(CLIENT), "--point", "dir=/nonexistent/dir.pcap")
    assert code == 2
    assert "/nonexistent/dir.pcap" in _one_error_line(err)


def test_cli_point_names_reach_the_report() -> None:
    code, out, err = _run(
        "analyze", str(CLIENT), "--point", f"director={DIRECTOR}", "--point", f"edge={CLIENT}",
        "-f", "json", "--fail-on", "never",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert [c["path"].rsplit("/", 1)[-1] for c in data["captures"]] == [
        "client-eth0.pcap",
        "director.pcapng",
    ]
    points = {p["name"]: p for p in data["correlation"]["points"]}
    assert points["edge"]["named_by"] == "option" and points["edge"]["offset_basis"] == "reference"
    assert points["director"]["named_by"] == "option"
    assert points["director"]["taps"] == ["director:eth1", "director:eth0"]


# --- case folders --------------------------------------------------------------------------------
def _case(tmp_path: Path, with_facts_dir: bool) -> Path:
    """A case folder as people leave them: no extensions, a compressed capture, notes."""
    case = tmp_path / "incident-42"
    (case / "director").mkdir(parents=True)
    shutil.copy(CLIENT, case / "client-trace")
    with gzip.open(case / "director" / "dump.gz", "wb") as out:
        out.write(DIRECTOR.read_bytes())
    (case / "README.md").write_text("# what happened\n")
    (case / "README").write_text("what happened\n")
    (case / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (case / ".hidden.pcap").write_bytes(CLIENT.read_bytes())
    if with_facts_dir:
        shutil.copytree(SAMPLE / "facts", case / "facts")
    else:
        (case / "director-ip.txt").write_text(
            (SAMPLE / "facts" / "director.txt").read_text(encoding="utf-8"), encoding="utf-8"
        )
        (case / "director" / "ipvsadm.txt").write_text(
            (SAMPLE / "facts" / "ipvsadm.txt").read_text(encoding="utf-8"), encoding="utf-8"
        )
    return case


def test_expand_case_with_a_facts_folder(tmp_path: Path) -> None:
    case = _case(tmp_path, with_facts_dir=True)
    captures, facts = expand_case(str(case))
    assert captures == [str(case / "client-trace"), str(case / "director" / "dump.gz")]
    assert facts == [str(case / "facts")]


def test_expand_case_takes_other_text_files_as_facts(tmp_path: Path) -> None:
    case = _case(tmp_path, with_facts_dir=False)
    captures, facts = expand_case(str(case))
    assert len(captures) == 2
    # notes for people, binary files and hidden files are not facts
    assert facts == [str(case / "director-ip.txt"), str(case / "director" / "ipvsadm.txt")]


def test_is_capture_by_content(tmp_path: Path) -> None:
    assert is_capture(str(CLIENT)) and is_capture(str(DIRECTOR))
    text = tmp_path / "x.pcap"
    text.write_text("not a capture\n")
    assert not is_capture(str(text))
    packed = tmp_path / "x"
    packed.write_bytes(gzip.compress(b"hello, not a capture either"))
    assert not is_capture(str(packed))
    assert not is_capture(str(tmp_path / "absent"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "no capture (pcap, pcapng) and no facts file in this folder"),
        (lambda p: p / "absent", "no such file or directory"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
    ],
)
def test_expand_case_errors(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(NetdiagError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand_case(str(path))


def test_cli_case_folder(tmp_path: Path) -> None:
    case = _case(tmp_path, with_facts_dir=True)
    code, out, err = _run("analyze", str(case), "-f", "json")
    assert code == 1, err  # NAT001: the real server's replies bypass the director
    data = json.loads(out)
    assert [os.path.basename(c["path"]) for c in data["captures"]] == ["client-trace", "dump.gz"]
    assert len(data["facts_sources"]) == len(list((SAMPLE / "facts").iterdir()))
    assert "NAT001" in [f["code"] for f in data["findings"]]
    assert [p["name"] for p in data["correlation"]["points"]][0] == "client-trace"


def test_cli_case_folder_errors_are_one_line(tmp_path: Path) -> None:
    code, out, err = _run("analyze", str(tmp_path))
    assert code == 2 and out == ""
    assert str(tmp_path) in _one_error_line(err)
    # a capture-named file the reader refuses is reported, not silently left out
    shutil.copy(CLIENT, tmp_path / "client.pcap")
    (tmp_path / "broken.pcap").write_bytes(b"")
    code, out, err = _run("analyze", str(tmp_path))
    assert code == 2
    line = _one_error_line(err)
    assert "broken.pcap" in line and "empty" in line
