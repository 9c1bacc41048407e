"""Summaries of a scan catalogue: findings by rule, by host or VIP, or by day; the failed files.

:func:`build_report` returns a pandas DataFrame (one row per group), :func:`failed_files` one row
per capture whose analysis failed; `netdiag scan-report` prints them as a table or writes CSV,
JSON lines or Parquet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import IO, Any

import pandas as pd

from netdiag.errors import NetdiagError
from netdiag.scan.catalogue import Catalogue

#: addresses in a finding's subject ("10.10.1.11 -> 10.10.0.100:80", "VIP 10.0.0.1", "fe80::1")
_IPV4 = r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?![\d.])"
_IPV6 = r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:/\d{1,3})?(?![0-9A-Fa-f:])"
ADDRESS_RE = re.compile(f"{_IPV4}|{_IPV6}")

FINDING_COLUMNS = [
    "code",
    "severity",
    "subject",
    "first_ts",
    "last_ts",
    "fingerprint",
    "path",
    "capture_first_ts",
]


def hosts_of(subject: str) -> list[str]:
    """The hosts a finding is about: every address in its subject, else its first word (a host
    name, as in "director does not forward")."""
    found = list(dict.fromkeys(ADDRESS_RE.findall(subject)))
    if found:
        return found
    words = subject.split()
    return [words[0]] if words else [""]


def findings_frame(catalogue: Catalogue) -> pd.DataFrame:
    """Every catalogued finding (latest result of each capture) with its capture's path."""
    rows = catalogue.db.execute(
        "SELECT f.code, f.severity, f.subject, f.first_ts, f.last_ts, f.fingerprint, c.path,"
        " c.first_ts FROM findings f JOIN captures c ON c.id = f.capture_id"
        " ORDER BY f.code, c.path, f.subject"
    ).fetchall()
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def _grouped(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    severity_rank = {"info": 0, "warning": 1, "error": 2}
    out = (
        frame.assign(rank=frame["severity"].map(severity_rank))
        .groupby(keys, sort=True)
        .agg(
            rank=("rank", "max"),
            findings=("code", "size"),
            captures=("path", "nunique"),
            first_ts=("first_ts", "min"),
            last_ts=("last_ts", "max"),
        )
        .reset_index()
    )
    names = {v: k for k, v in severity_rank.items()}
    out.insert(len(keys), "severity", out.pop("rank").map(names))
    return out


def by_code(frame: pd.DataFrame) -> pd.DataFrame:
    return _grouped(frame, ["code"])


def by_host(frame: pd.DataFrame) -> pd.DataFrame:
    exploded = frame.assign(host=frame["subject"].map(hosts_of)).explode("host")
    return _grouped(exploded, ["host", "code"])


def by_day(frame: pd.DataFrame) -> pd.DataFrame:
    when = frame["first_ts"].fillna(frame["capture_first_ts"]).fillna("")
    return _grouped(frame.assign(day=when.str.slice(0, 10).replace("", "unknown")), ["day", "code"])


GROUPINGS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "code": by_code,
    "host": by_host,
    "day": by_day,
}


def build_report(db: str, by: str = "code") -> pd.DataFrame:
    """Findings of the catalogue ``db`` grouped ``by`` code, host or day."""
    if by not in GROUPINGS:
        raise NetdiagError(None, f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    with Catalogue(db, create=False) as catalogue:
        frame = findings_frame(catalogue)
    return GROUPINGS[by](frame)


def failed_files(db: str) -> pd.DataFrame:
    """The captures whose last analysis failed, with their one-line error."""
    with Catalogue(db, create=False) as catalogue:
        rows = catalogue.db.execute(
            "SELECT path, error, size, scanned_at FROM captures WHERE status = 'failed'"
            " ORDER BY path"
        ).fetchall()
    return pd.DataFrame(rows, columns=["path", "error", "size", "scanned_at"])


def status_counts(db: str) -> dict[str, int]:
    with Catalogue(db, create=False) as catalogue:
        rows = catalogue.db.execute(
            "SELECT status, count(*) FROM captures GROUP BY status"
        ).fetchall()
    return {str(k): int(v) for k, v in rows}


# --- output formats ----------------------------------------------------------------------------


def write_csv(frame: pd.DataFrame, out: IO[Any]) -> None:
    frame.to_csv(out, index=False)


def write_jsonl(frame: pd.DataFrame, out: IO[Any]) -> None:
    text = frame.to_json(orient="records", lines=True, force_ascii=False)
    out.write(text if text.endswith("\n") or not text else text + "\n")


def write_parquet(frame: pd.DataFrame, out: IO[Any]) -> None:
    frame.to_parquet(out, index=False)


def table(frame: pd.DataFrame, title: str) -> Any:
    """A rich Table of ``frame``."""
    from rich.table import Table

    view = Table(title=title, title_justify="left")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        view.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        view.add_row(*("" if v is None or v != v else str(v) for v in row))
    return view


#: format -> (writer, binary output)
WRITERS: dict[str, tuple[Callable[[pd.DataFrame, IO[Any]], None], bool]] = {
    "csv": (write_csv, False),
    "jsonl": (write_jsonl, False),
    "parquet": (write_parquet, True),
}
FORMATS = ("table", *WRITERS)
