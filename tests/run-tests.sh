#!/bin/sh
# run-tests.sh — runs test programs and prints one summary line.
#
# Arguments are FLAVOUR:PATH pairs (py:PATH and py-FLAVOUR:PATH run a Python
# test with /usr/bin/python3 against build/rel or build/FLAVOUR).  Each
# program prints one line per test case, "PASS: name", "FAIL: name: why" or
# "SKIP: name: why" (a skip is reported, never counted as a pass).  A program
# that crashes, times out or exits non-zero without reporting a failure
# counts as one failed test, so a silent abort can never read as success.
# Last line: "N passed, N failed".
passed=0
failed=0
skipped=0
: "${RWKVD_TEST_TIMEOUT:=900}"
log_dir=build/test-logs
mkdir -p "$log_dir"
for arg in "$@"; do
    flavour=${arg%%:*}
    prog=${arg#*:}
    name=$(basename "$prog")
    log="$log_dir/$flavour-$name.log"
    start=$(date +%s)
    case "$flavour" in
    py|py-*)
        # Python tests (Debian's python3: it has python3-zmq and -msgpack);
        # py-FLAVOUR runs them against build/FLAVOUR/bin, plain py against rel.
        py_flavour=rel
        [ "$flavour" != py ] && py_flavour=${flavour#py-}
        RWKVD_BUILD_FLAVOUR=$py_flavour timeout "$RWKVD_TEST_TIMEOUT" \
            /usr/bin/python3 "$prog" >"$log" 2>&1
        ;;
    *)
        timeout "$RWKVD_TEST_TIMEOUT" "$prog" >"$log" 2>&1
        ;;
    esac
    rc=$?
    secs=$(( $(date +%s) - start ))
    p=$(grep -c '^PASS: ' "$log")
    f=$(grep -c '^FAIL: ' "$log")
    s=$(grep -c '^SKIP: ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "FAIL: $flavour $name exited with status $rc without reporting a failure" >>"$log"
    fi
    if [ "$rc" -eq 0 ] && [ "$f" -ne 0 ]; then
        echo "FAIL: $flavour $name reported failures but exited 0" >>"$log"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    status=ok
    [ "$f" -ne 0 ] && status=FAILED
    printf '%-6s %-32s %4d passed %3d failed %3d skipped %4ds  %s\n' "$flavour" "$name" "$p" "$f" "$s" "$secs" "$status"
    if [ "$f" -ne 0 ]; then
        grep -E '^(FAIL|SKIP): ' "$log" | sed 's/^/    /' | head -n 40
        echo "    (full log: $log)"
        tail -n 15 "$log" | sed 's/^/    | /'
    fi
    grep '^SKIP: ' "$log" | sed 's/^/    /'
done
[ "$skipped" -ne 0 ] && echo "($skipped skipped, see SKIP lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
