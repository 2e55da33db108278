"""client_checks.py: what the t/python client scripts share. Each check
is recorded with check(), never asserted; run(main) calls the script's
main, turns an unexpected exception into one failed check, prints one
JSON line {"checks": [[name, ok, detail], ...]} for the calling .t file
(which makes each check a TAP test and sees a missing one) and exits 0
only when every check passed.
"""

import json
import sys

checks = []


def check(name, ok, detail=""):
    checks.append([name, bool(ok), str(detail)[:300]])
    return ok


def run(main):
    try:
        main()
    except Exception as e:  # an unexpected failure is one failed check
        check("client ran without an exception", False, repr(e))
    print(json.dumps({"checks": checks}))
    sys.exit(0 if all(c[1] for c in checks) else 1)
