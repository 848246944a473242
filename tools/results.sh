# tools/results.sh: JUnit XML for tcefw's test runs, sourced by qemu-run.sh and test.sh.
# POSIX awk only (Debian's default awk is mawk); tools/check-junit.py reads the result back
# with Python's xml.etree.
#
#   results_junit_serial LOG SUITE OUT EXPECTED ELAPSED RUN_ERROR
#       one <testsuite> from a serial log: a testcase per PASS/FAIL/SKIP line (tier from the
#       TIER line before it, time from the line), a failure for `FAIL selection`, a SKIP
#       for a device named in EXPECTED (space-separated QEMU driver names) counted as a
#       failure, and a `run` testcase with an error when RUN_ERROR is not empty.
#   results_junit_cargo LOG OUT
#       one <testsuite> per test binary from `cargo test` output (plain format: stable
#       cargo has no machine-readable one), with each failure's captured output.
#   results_junit_checks TSV SUITE OUT
#       one <testsuite> from lines `PASS|FAIL<TAB>name<TAB>seconds<TAB>message`.
#   results_junit_merge OUT NAME FILES...
#       one <testsuites> document holding every <testsuite> of FILES.

# Shared awk: XML escaping (control characters other than tab and newline are not allowed
# in XML 1.0 at all, so they are dropped).
results_awk_lib='
function xml(s) {
    gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s)
    gsub(/"/, "\\&quot;", s)
    gsub(/[\001-\010\013\014\016-\037\177]/, "", s)
    return s
}
function header() { print "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" }
'

results_junit_serial() {
    local log=$1 suite=$2 out=$3 expected=$4 elapsed=$5 run_error=$6
    awk -v suite="$suite" -v expected=" $expected " -v elapsed="$elapsed" \
        -v run_error="$run_error" -v serial_log="$log" "$results_awk_lib"'
        { sub(/\r$/, "") }
        /^TIER [^ ]+: / { tier = $2; sub(/:$/, "", tier); next }
        /^FAIL selection: / {
            n++; kind[n] = "FAIL"; name[n] = "selection"; cls[n] = suite; t[n] = "0"
            why[n] = substr($0, 17); next
        }
        /^(PASS|FAIL|SKIP) [^ ]+ \([0-9.]+ s\)/ {
            n++; kind[n] = $1; name[n] = $2; cls[n] = suite "." (tier == "" ? "tests" : tier)
            t[n] = $3; sub(/^\(/, "", t[n])
            rest = $0; at = index(rest, " s): ")
            why[n] = at ? substr(rest, at + 5) : ""
            if (kind[n] == "SKIP" && why[n] ~ /^needs /) {
                device = substr(why[n], 7); sub(/[ (:,].*$/, "", device)
                if (index(expected, " " device " ")) {
                    kind[n] = "FAIL"
                    why[n] = "skipped, but this run has the device it needs (" device "): " why[n]
                }
            }
            next
        }
        END {
            if (run_error != "") {
                n++; kind[n] = "ERROR"; name[n] = "run"; cls[n] = suite; t[n] = elapsed
                why[n] = run_error
            }
            for (i = 1; i <= n; i++) {
                if (kind[i] == "FAIL") failures++
                else if (kind[i] == "SKIP") skipped++
                else if (kind[i] == "ERROR") errors++
            }
            header()
            printf "<testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%s\">\n", \
                xml(suite), n, failures, errors, skipped, elapsed
            printf "  <properties><property name=\"serial-log\" value=\"%s\"/></properties>\n", xml(serial_log)
            for (i = 1; i <= n; i++) {
                printf "  <testcase classname=\"%s\" name=\"%s\" time=\"%s\"", xml(cls[i]), xml(name[i]), t[i]
                if (kind[i] == "PASS") { print "/>"; continue }
                print ">"
                if (kind[i] == "FAIL")
                    printf "    <failure message=\"%s\" type=\"failure\">%s</failure>\n", xml(why[i]), xml(why[i])
                else if (kind[i] == "SKIP")
                    printf "    <skipped message=\"%s\"/>\n", xml(why[i])
                else
                    printf "    <error message=\"%s\" type=\"error\">%s</error>\n", xml(why[i]), xml(why[i])
                print "  </testcase>"
            }
            print "</testsuite>"
        }' "$log" > "$out"
}

results_junit_cargo() {
    local log=$1 out=$2
    awk "$results_awk_lib"'
        function flush(   i, failures, skipped) {
            if (suite == "") return
            failures = 0; skipped = 0
            for (i = 1; i <= n; i++) {
                if (status[i] == "FAILED") failures++
                else if (status[i] == "ignored") skipped++
            }
            all_tests += n; all_failures += failures; all_skipped += skipped
            out = out sprintf("<testsuite name=\"host: %s\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" time=\"%s\">\n", \
                xml(suite), n, failures, skipped, (suite_time == "" ? "0" : suite_time))
            for (i = 1; i <= n; i++) {
                out = out sprintf("  <testcase classname=\"host.%s\" name=\"%s\"", xml(suite), xml(test[i]))
                if (status[i] == "ok") { out = out "/>\n"; continue }
                out = out ">\n"
                if (status[i] == "ignored") out = out "    <skipped/>\n"
                else {
                    message = output[test[i]]; first = message
                    sub(/\n/, " ", first); sub(/\n.*/, "", first)
                    out = out sprintf("    <failure message=\"%s\" type=\"failure\">%s</failure>\n", \
                        xml(first == "" ? "failed" : first), xml(message))
                }
                out = out "  </testcase>\n"
            }
            out = out "</testsuite>\n"
            suite = ""; n = 0; suite_time = ""; split("", output)
        }

        { sub(/\r$/, "") }
        /^ *Running / { flush(); suite = ($2 == "unittests" ? $3 : $2); capture = ""; next }
        /^ *Doc-tests / { flush(); suite = "doctests " $2; capture = ""; next }
        /^test .* \.\.\. (ok|FAILED|ignored)/ {
            line = $0; sub(/^test /, "", line)
            at = index(line, " ... ")
            n++; test[n] = substr(line, 1, at - 1)
            status[n] = substr(line, at + 5); sub(/[ ,].*$/, "", status[n])
            next
        }
        /^---- .* stdout ----$/ {
            capture = $0; sub(/^---- /, "", capture); sub(/ stdout ----$/, "", capture)
            output[capture] = ""; next
        }
        /^failures:$/ { capture = ""; next }
        /^test result: / {
            capture = ""
            if (match($0, /finished in [0-9.]+s/)) {
                suite_time = substr($0, RSTART + 12, RLENGTH - 13)
            }
            flush(); next
        }
        capture != "" {
            output[capture] = output[capture] (output[capture] == "" ? "" : "\n") $0
        }
        END {
            flush(); header()
            printf "<testsuites tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\">\n", \
                all_tests, all_failures, all_skipped
            printf "%s", out
            print "</testsuites>"
        }' "$log" > "$out"
}

results_junit_checks() {
    local tsv=$1 suite=$2 out=$3
    awk -F '\t' -v suite="$suite" "$results_awk_lib"'
        { n++; kind[n] = $1; name[n] = $2; t[n] = ($3 == "" ? "0" : $3); why[n] = $4
          if ($1 != "PASS") failures++; total += t[n] }
        END {
            header()
            printf "<testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"0\" time=\"%s\">\n", \
                xml(suite), n, failures, total
            for (i = 1; i <= n; i++) {
                printf "  <testcase classname=\"%s\" name=\"%s\" time=\"%s\"", xml(suite), xml(name[i]), t[i]
                if (kind[i] == "PASS") { print "/>"; continue }
                print ">"
                printf "    <failure message=\"%s\" type=\"failure\">%s</failure>\n", xml(why[i]), xml(why[i])
                print "  </testcase>"
            }
            print "</testsuite>"
        }' "$tsv" > "$out"
}

results_junit_merge() {
    local out=$1 name=$2
    shift 2
    awk -v name="$name" "$results_awk_lib"'
        function attribute(line, key,   rest) {
            if (!match(line, " " key "=\"[^\"]*\"")) return 0
            rest = substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 4)
            return rest + 0
        }
        /^<\?xml/ || /^<\/?testsuites[ >]/ { next }
        /^<testsuite / {
            tests += attribute($0, "tests"); failures += attribute($0, "failures")
            errors += attribute($0, "errors"); skipped += attribute($0, "skipped")
            time += attribute($0, "time")
        }
        { body = body $0 "\n" }
        END {
            header()
            printf "<testsuites name=\"%s\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%.3f\">\n", \
                xml(name), tests, failures, errors, skipped, time
            printf "%s", body
            print "</testsuites>"
        }' "$@" > "$out"
}
