#!/usr/bin/env python3
"""tools/check-junit.py: read a JUnit XML file with Python's standard parser (xml.etree), as
a CI system would, and check it: every testcase has a name and a classname and at most one
outcome, every <testsuite>'s counts match its testcases, and (with --expect) the totals are
what the caller counted itself. Prints one summary line; exits 1 on any mismatch.

    tools/check-junit.py FILE [--expect PASSED FAILED SKIPPED]
"""
import sys
import xml.etree.ElementTree as ET


def check(path, expected):
    problems = []
    root = ET.parse(path).getroot()
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = root.findall("testsuite")
    else:
        return ["root element is <%s>, not <testsuites> or <testsuite>" % root.tag], None
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for suite in suites:
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for case in suite.findall("testcase"):
            counts["tests"] += 1
            where = "%s: testcase %r" % (suite.get("name"), case.get("name"))
            if not case.get("name") or not case.get("classname"):
                problems.append("%s lacks a name or classname" % where)
            try:
                float(case.get("time", "0"))
            except ValueError:
                problems.append("%s has time %r" % (where, case.get("time")))
            outcomes = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
            if len(outcomes) > 1:
                problems.append("%s has outcomes %s" % (where, outcomes))
            if "failure" in outcomes:
                counts["failures"] += 1
                totals["failed"] += 1
            elif "error" in outcomes:
                counts["errors"] += 1
                totals["failed"] += 1
            elif "skipped" in outcomes:
                counts["skipped"] += 1
                totals["skipped"] += 1
            else:
                totals["passed"] += 1
        for key, count in counts.items():
            stated = suite.get(key)
            if stated is None or int(stated) != count:
                problems.append("suite %s says %s=%s, its testcases make %d"
                                % (suite.get("name"), key, stated, count))
    if root.tag == "testsuites":
        for key in ("tests", "failures", "errors", "skipped"):
            stated = root.get(key)
            summed = sum(int(s.get(key, "0")) for s in suites)
            if stated is None or int(stated) != summed:
                problems.append("<testsuites> says %s=%s, its suites add up to %d"
                                % (key, stated, summed))
    if expected is not None:
        got = (totals["passed"], totals["failed"], totals["skipped"])
        if got != expected:
            problems.append("%d passed, %d failed, %d skipped in the file; expected "
                            "%d passed, %d failed, %d skipped" % (got + expected))
    return problems, (len(suites), totals)


def main(argv):
    if len(argv) == 2:
        expected = None
    elif len(argv) == 6 and argv[2] == "--expect":
        expected = tuple(int(n) for n in argv[3:6])
    else:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    try:
        problems, summary = check(argv[1], expected)
    except (ET.ParseError, OSError) as error:
        print("check-junit: %s: %s" % (argv[1], error))
        return 1
    for problem in problems:
        print("check-junit: %s: %s" % (argv[1], problem))
    if summary:
        suites, totals = summary
        print("check-junit: %s: %d suite(s), %d passed, %d failed, %d skipped"
              % (argv[1], suites, totals["passed"], totals["failed"], totals["skipped"]))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
