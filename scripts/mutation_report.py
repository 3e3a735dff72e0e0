"""Turn the mutation summary of scripts/mutate.py into the tables of docs/testing.md.

Examples:
    python scripts/mutation_report.py               # rewrite the tables in docs/testing.md
    python scripts/mutation_report.py --check       # also fail below 90 % or on a survivor
                                                    # without a disposition
    python scripts/mutation_report.py --print       # print the tables instead

docs/testing.md holds two generated tables, each between ``<!-- NAME:begin -->`` and
``<!-- NAME:end -->``: ``mutation-table`` (per module: mutants run, killed, survived,
equivalent, score) and ``survivors`` (one row per surviving mutant: its change and its
disposition). A disposition is written by hand in the survivors table and kept across runs
(matched by the mutant's name); one that starts with ``equivalent`` takes the mutant out of
the score's denominator, one that starts with ``killed`` (a mutant mutmut cannot see die, shown
to fail the tests by hand) counts as killed. The score of a module is
(killed + timeout) / (run - equivalent), where "run" leaves out the mutants the time box left
unchecked; a mutant no test covers counts as not killed.
"""

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "mutants" / "summary.json"
DOC = ROOT / "docs" / "testing.md"
GOAL = 0.90
UNEXPLAINED = "**no disposition yet**"
_ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<change>.*) \| (?P<disposition>.*) \|$")


def _block(text: str, name: str) -> tuple[int, int]:
    """Start and end offsets of the generated block ``name`` (between its markers)."""
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    start = text.find(begin)
    stop = text.find(end)
    if start < 0 or stop < start:
        raise SystemExit(f"error: {DOC} has no '{begin.strip()}' ... '{end}' block")
    return start + len(begin), stop


def dispositions(text: str) -> dict[str, str]:
    """``{mutant name: disposition}`` from the survivors table of docs/testing.md."""
    start, stop = _block(text, "survivors")
    found = {}
    for line in text[start:stop].splitlines():
        match = _ROW.match(line)
        if match and match["disposition"] != UNEXPLAINED:
            found[match["name"]] = match["disposition"]
    return found


def change(diff: str) -> str:
    """The changed lines of a mutant's diff as ``old`` → ``new`` (code spans, one line)."""
    old = [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    new = [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]

    def code(lines: list[str]) -> str:
        joined = " ".join(lines) or "(nothing)"
        if len(joined) > 90:
            joined = joined[:87] + "..."
        return "`" + joined.replace("|", "\\|").replace("`", "'") + "`"

    return f"{code(old)} → {code(new)}"


def _is_equivalent(disposition: str) -> bool:
    return disposition.lower().startswith("equivalent")


def _is_killed(disposition: str) -> bool:
    return disposition.lower().startswith("killed")


def score(row: dict[str, Any], known: dict[str, str]) -> tuple[int, float | None]:
    """``(equivalent survivors, score)`` of a module (score None if nothing was run)."""
    equivalent = sum(_is_equivalent(known.get(name, "")) for name in row["survivors"])
    by_hand = sum(_is_killed(known.get(name, "")) for name in row["survivors"])
    run = row["mutants"] - row["not_checked"] - equivalent
    killed = row["killed"] + row["timeout"] + by_hand
    return equivalent, (killed / run if run > 0 else None)


def module_table(summary: dict[str, Any], known: dict[str, str]) -> str:
    """The per-module table (markdown)."""
    lines = [
        "| module | tests | in scope | run | killed | survived | equivalent | no test | "
        "unchecked | score | time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["modules"]:
        equivalent, value = score(row, known)
        functions = f" ({', '.join(row['functions'])})" if row["functions"] else ""
        tests = ", ".join(Path(t).name for t in row["tests"])
        shown = "—" if value is None else f"{100 * value:.1f} %"
        if value is not None and value < GOAL:
            shown = f"**{shown}**"
        lines.append(
            f"| {row['module']}{functions} | {tests} | {row['in_scope']} | {row['mutants']} | "
            f"{row['killed'] + row['timeout']} | {row['survived']} | {equivalent} | "
            f"{row['no_tests']} | {row['not_checked']} | {shown} | {row['seconds']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def survivors_table(summary: dict[str, Any], known: dict[str, str]) -> str:
    """One row per surviving mutant, its change and its disposition (kept from the doc)."""
    lines = ["| mutant | change | disposition |", "|---|---|---|"]
    for row in summary["modules"]:
        for name, diff in row["survivors"].items():
            lines.append(f"| `{name}` | {change(diff)} | {known.get(name, UNEXPLAINED)} |")
    return "\n".join(lines) + "\n"


def failures(summary: dict[str, Any], known: dict[str, str]) -> list[str]:
    """What keeps the run from its goal: low scores, survivors without a disposition."""
    problems = []
    for row in summary["modules"]:
        _, value = score(row, known)
        if row.get("error"):
            problems.append(f"{row['module']}: mutmut failed: {row['error'][:200]}")
        if value is not None and value < GOAL:
            problems.append(f"{row['module']}: score {100 * value:.1f} % < {100 * GOAL:.0f} %")
        problems += [f"{name}: no disposition" for name in row["survivors"] if name not in known]
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=SUMMARY, help="scripts/mutate.py output")
    parser.add_argument("--doc", type=Path, default=DOC, help="the document to update")
    parser.add_argument("--print", action="store_true", help="print the tables, write nothing")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)

    if not args.summary.is_file():
        raise SystemExit(f"error: no summary '{args.summary}'; run scripts/mutate.py first")
    summary = json.loads(args.summary.read_text(encoding="utf-8"))
    text = args.doc.read_text(encoding="utf-8")
    known = dispositions(text)
    tables = {
        "mutation-table": module_table(summary, known),
        "survivors": survivors_table(summary, known),
    }
    if args.print:
        print("\n".join(tables.values()))
    else:
        for name, table in tables.items():
            start, stop = _block(text, name)
            text = text[:start] + table + text[stop:]
        args.doc.write_text(text, encoding="utf-8")
        print(f"updated {args.doc} from {args.summary} ({summary.get('tool', 'mutmut')})")
    problems = failures(summary, known)
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.check and problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
