#!/usr/bin/env python3
"""Mutation testing of the lines that carry a promise (issue 18; docs/testing.md, "Mutants").

Each mutation of tests/mutants/mutations.txt is applied alone to a scratch copy of the sources
(build/mutants/src), built incrementally there (only the mutated object and a relink), and run
against the tests it names; a mutation is caught when one of them fails. Prints a table and
exits non-zero when a mutation escapes, when its original text is not found exactly once (a
stale mutation is an error, not a pass), when a mutant does not build, or when the named tests
fail before any mutation.
"""

import argparse
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "tests" / "mutants" / "mutations.txt"
SCRATCH = ROOT / "build" / "mutants"
SOURCE = SCRATCH / "src"
# The release preset's directory inside the scratch copy: the same relative paths and flags as
# build/release, so that ccache (base_dir) serves the unmutated objects from the release build.
BUILD = SOURCE / "build" / "release"
# "unit" filters run in both gtest executables: the tests in which more than one thread runs are
# their own executable (for the tsan preset), the rest are the unit tests.
UNIT_TEST_BINARIES = ("mailcanary_unit_tests", "mailcanary_thread_tests")
TEST_TIMEOUT = 300  # a mutant that hangs a test is caught by the timeout


@dataclass
class Mutation:
    id: str
    file: str
    original: str
    replacement: str
    tests: str  # "unit <gtest filter>" or "ctest <regex>"
    why: str
    line: int  # in the list, for messages
    tags: set = field(default_factory=set)

    @property
    def group(self):
        return self.id.split("/", 1)[0]


def unescape(text):
    """The list writes a line break as \\n and a backslash as \\\\."""
    return re.sub(r"\\(\\|n)", lambda m: "\n" if m.group(1) == "n" else "\\", text)


def read_list(path):
    mutations, record, problems = [], {}, []
    fields = ("id", "file", "from", "to", "tests", "why", "tags")

    def finish():
        if not record:
            return
        missing = [f for f in fields[:6] if f not in record]
        if missing:
            problems.append(f"{path}:{record['@line']}: missing {', '.join(missing)}")
        else:
            mutations.append(Mutation(
                record["id"], record["file"], unescape(record["from"]), unescape(record["to"]),
                record["tests"], record["why"], record["@line"],
                set(record.get("tags", "").split())))
        record.clear()

    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            finish()
            continue
        key, sep, value = line.partition(":")
        if not sep or key not in fields:
            problems.append(f"{path}:{number}: expected one of {', '.join(fields)}: {line}")
            continue
        if key in record:
            problems.append(f"{path}:{number}: {key} given twice")
        record.setdefault("@line", number)
        # One space after the colon is the separator; any more belong to the text.
        record[key] = value[1:] if value.startswith(" ") else value
    finish()
    ids = [m.id for m in mutations]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"{path}: mutation {duplicate} listed twice")
    for mutation in mutations:
        if mutation.original == mutation.replacement:
            problems.append(f"{path}:{mutation.line}: {mutation.id} changes nothing")
        if mutation.tests.split(" ", 1)[0] not in ("unit", "ctest"):
            problems.append(f"{path}:{mutation.line}: tests must start with unit or ctest")
    return mutations, problems


def tracked_files():
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def digest(path):
    return hashlib.sha256(path.read_bytes()).digest()


def sync_scratch():
    """Copies what differs (by content) and removes what is gone; a copied file gets a new mtime,
    so the build redoes exactly what changed, including a file an interrupted run left mutated."""
    wanted = set(tracked_files())
    for name in wanted:
        source, copy = ROOT / name, SOURCE / name
        if copy.is_file() and digest(copy) == digest(source):
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
        shutil.copymode(source, copy)
    for copy in SOURCE.rglob("*"):
        relative = copy.relative_to(SOURCE).as_posix()
        if copy.is_file() and not relative.startswith("build/") and relative not in wanted:
            copy.unlink()


def run(command, log, timeout=None, env=None):
    """Runs `command` in the scratch build, appending its output to `log`; returns (code, out)."""
    try:
        done = subprocess.run(command, cwd=SOURCE, capture_output=True, text=True,
                              timeout=timeout, env=env, errors="replace")
        out, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        out = (expired.stdout or b"").decode(errors="replace") if isinstance(
            expired.stdout, bytes) else (expired.stdout or "")
        code = "timeout"
    with open(log, "a") as f:
        f.write(f"$ {' '.join(map(str, command))}\n{out}\n")
    return code, out


def children_cpu():
    """CPU seconds of every finished child so far: on a busy machine a better measure of what a
    mutation costs than the time it took."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_env():
    env = dict(os.environ)
    if shutil.which("ccache"):
        env["CMAKE_CXX_COMPILER_LAUNCHER"] = env["CMAKE_C_COMPILER_LAUNCHER"] = "ccache"
        # Relative paths in the hashes: the scratch copy's objects are the release build's.
        env.setdefault("CCACHE_BASEDIR", str(ROOT))
        env["CCACHE_NOHASHDIR"] = "1"
    return env


def configure(log):
    # Tests are listed when ctest runs, not after each link: the unit tests are run directly.
    extra = ["-DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST"]
    if os.environ.get("MAILCANARY_STACK_PORT_BASE"):
        extra.append("-DMAILCANARY_STACK_PORT_BASE=" + os.environ["MAILCANARY_STACK_PORT_BASE"])
    code, out = run(["cmake", "--preset", "release", *extra], log, env=build_env())
    if code != 0:
        sys.exit(f"mutants: cannot configure the scratch copy (see {log}):\n{out[-2000:]}")


def build(targets, log, jobs):
    if not targets:
        return True, ""
    code, out = run(["cmake", "--build", str(BUILD), "-j", str(jobs), "--target", *targets],
                    log, env=build_env())
    return code == 0, out


def targets_for(tests):
    kind, _, argument = tests.partition(" ")
    if kind == "unit":
        return list(UNIT_TEST_BINARIES)
    # Monitoring tests need nothing built; integration tests need the agent and their binaries.
    return [] if argument.lstrip("^").startswith("monitoring_") else ["all"]


def run_tests(tests, log, fail_fast=False):
    """Returns None when every named test passes, else what failed (the first test's name).
    With fail_fast, the tests stop at the first failure: "(+N)" is then not known."""
    kind, _, argument = tests.partition(" ")
    if kind == "unit":
        ran_any = False
        for binary in UNIT_TEST_BINARIES:
            command = [str(BUILD / "tests" / binary), "--gtest_filter=" + argument]
            code, out = run(command + (["--gtest_fail_fast"] if fail_fast else []), log,
                            TEST_TIMEOUT)
            if code == "timeout":
                return "hung: " + (re.findall(r"\[ RUN      \] (\S+)", out) or ["?"])[-1]
            if code == 0:
                ran_any = ran_any or "[  PASSED  ] 0 tests" not in out
                continue
            failed = sorted(set(re.findall(r"^\[  FAILED  \] (\S+\.\S+)", out, re.M)))
            if failed:
                return failed[0] + (f" (+{len(failed) - 1})" if len(failed) > 1 else "")
            ran = re.findall(r"\[ RUN      \] (\S+)", out)
            return f"crash ({code}) in " + (ran[-1] if ran else "?")
        return None if ran_any else "NO TESTS"  # a filter matching nothing protects nothing
    command = ["ctest", "--test-dir", str(BUILD), "-R", argument, "--output-on-failure"]
    code, out = run(command + (["--stop-on-failure"] if fail_fast else []), log, TEST_TIMEOUT * 3)
    if code == "timeout":
        return "hung: ctest -R " + argument
    if code == 0:
        if "No tests were found" in out:
            return "NO TESTS"
        return None
    failed = re.findall(r"^\s*\d+ - (\S+) \((?:Failed|Timeout|SEGFAULT|Subprocess aborted|"
                        r"Exception|Child aborted|[^)]*)\)", out, re.M)
    return failed[0] if failed else f"ctest exit {code}"


def found_once(tree, mutation):
    """None when the mutation's original text is in its file exactly once, else the problem."""
    path = tree / mutation.file
    if not path.is_file():
        return f"STALE: {mutation.file} does not exist"
    count = path.read_text().count(mutation.original)
    return None if count == 1 else f"STALE: original text found {count} times"


def apply(mutation):
    """Writes the mutant; returns None, or why it cannot (a stale mutation)."""
    problem = found_once(SOURCE, mutation)
    if problem is None:
        path = SOURCE / mutation.file
        path.write_text(path.read_text().replace(mutation.original, mutation.replacement))
    return problem


def restore(mutation):
    shutil.copyfile(ROOT / mutation.file, SOURCE / mutation.file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", help="only the mutations with this tag (the list's tags:)")
    parser.add_argument("--list", type=Path, default=LIST)
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--markdown", type=Path, help="also write the table there (Markdown)")
    parser.add_argument("--fail-fast", action="store_true",
                        help="stop a mutant's tests at the first failure (quicker; no \"(+N)\")")
    parser.add_argument("--check", action="store_true",
                        help="only check that every original text is found once, build nothing")
    parser.add_argument("ids", nargs="*", help="only these mutations (ids or id prefixes)")
    args = parser.parse_args()

    mutations, problems = read_list(args.list)
    if problems:
        sys.exit("mutants: " + "\n".join(problems))
    if args.tag:
        mutations = [m for m in mutations if args.tag in m.tags]
    if args.ids:
        mutations = [m for m in mutations if any(m.id.startswith(i) for i in args.ids)]
    if not mutations:
        sys.exit("mutants: no mutation selected")

    if args.check:
        stale = [(m, f) for m in mutations for f in [found_once(ROOT, m)] if f]
        for mutation, problem in stale:
            print(f"{args.list}:{mutation.line}: {mutation.id}: {problem}")
        print(f"mutants: {len(mutations)} mutations, {len(stale)} stale")
        return 1 if stale else 0

    started = time.monotonic()
    SOURCE.mkdir(parents=True, exist_ok=True)
    log = SCRATCH / "mutants.log"
    log.write_text("")
    print(f"mutants: {len(mutations)} mutations; scratch copy {SOURCE}, log {log}", flush=True)
    sync_scratch()
    configure(log)

    # The named tests must pass unmutated, or a failure would prove nothing.
    targets = sorted({t for m in mutations for t in targets_for(m.tests)})
    built, out = build(targets, log, args.jobs)
    if not built:
        sys.exit(f"mutants: the unmutated scratch copy does not build (see {log})")
    for tests in sorted({m.tests for m in mutations}):
        failed = run_tests(tests, log)
        if failed:
            sys.exit(f"mutants: '{tests}' fails before any mutation ({failed}); see {log}")
    print(f"mutants: unmutated build and tests pass ({time.monotonic() - started:.0f} s)",
          flush=True)

    rows, bad = [], 0
    for index, mutation in enumerate(mutations, 1):
        began, cpu_began = time.monotonic(), children_cpu()
        with open(log, "a") as f:
            f.write(f"\n=== {mutation.id}: {mutation.file}\n")
        verdict = apply(mutation)
        if verdict is None:
            try:
                built, out = build(targets_for(mutation.tests), log, args.jobs)
                if not built:
                    verdict = "DOES NOT BUILD"
                else:
                    caught = run_tests(mutation.tests, log, args.fail_fast)
                    verdict = "ESCAPED" if caught is None else caught
            finally:
                restore(mutation)
        error = verdict in ("ESCAPED", "DOES NOT BUILD", "NO TESTS") or verdict.startswith(
            "STALE")
        bad += error
        rows.append((mutation, verdict, error))
        print(f"[{index}/{len(mutations)}] {mutation.id:44} {'!! ' if error else ''}{verdict}"
              f"  ({time.monotonic() - began:.0f} s, {children_cpu() - cpu_began:.0f} s cpu)", flush=True)

    elapsed, cpu = time.monotonic() - started, children_cpu()
    caught = sum(1 for _, _, error in rows if not error)
    escaped = sum(1 for _, verdict, _ in rows if verdict == "ESCAPED")
    print(f"\n{'mutation':44} {'file':32} caught by")
    for mutation, verdict, _ in rows:
        print(f"{mutation.id:44} {mutation.file:32} {verdict}")
    print(f"\nmutants: {len(rows)} mutations, {caught} caught, {escaped} escaped, "
          f"{bad - escaped} errors, in {elapsed:.0f} s ({cpu:.0f} s cpu)")
    if args.markdown:
        lines = ["| mutation | file | what it breaks | caught by |", "|---|---|---|---|"]
        for mutation, verdict, _ in rows:
            lines.append(f"| `{mutation.id}` | `{mutation.file}` | {mutation.why} | "
                         f"{'**' + verdict + '**' if verdict == 'ESCAPED' else '`' + verdict + '`'} |")
        args.markdown.write_text("\n".join(lines) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
