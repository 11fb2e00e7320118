"""The Python test library shared by the harnesses: tests/sessions/run.py,
tests/cli/run.py, and through tests/e2e/e2elib.py the end-to-end, delivery
and integration tests.

- Failure, expect(), expect_eq(): a check that fails says what was expected
  and what was found.
- run(main): a test script's main; a Failure or any exception is "FAIL: ..."
  on stderr and exit status 1.
- Suite: named test functions, each with its own temporary directory,
  counted as passed, failed or skipped (a Skip is never a pass).
- clean_env(): the environment for a smtpspool child without the variables
  a superserver sets (TCP*, REMOTE_*, RELAYCLIENT), which would make it a
  network client.
- queued(spool): the messages in SPOOL/queue as (id, envelope, octets).
"""

import json
import os
import re
import sys
import tempfile
import traceback

# The superserver's variables (UCSPI, xinetd, tcprules) that say who the client is.
SUPERSERVER_PREFIXES = ("TCP", "REMOTE_", "RELAYCLIENT")

_NOTHING = object()


class Failure(Exception):
    pass


class Skip(Exception):
    """The test cannot run here (a missing tool, not root): counted as skipped, never passed."""


def _show(value, limit=400):
    text = value if isinstance(value, str) and "\n" in value else repr(value)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return text


def expect(cond, what, expected=_NOTHING, found=_NOTHING):
    """Fails unless cond. With expected and found, says both; else shows what
    (any value: a text, or the tuple of what was seen)."""
    if cond:
        return
    if expected is _NOTHING and found is _NOTHING:
        raise Failure(what if isinstance(what, str) else _show(what))
    raise Failure(f"{what}: expected {_show(expected)}, found {_show(found)}")


def expect_eq(expected, found, what):
    if expected == found:
        return
    if isinstance(expected, (bytes, str)) and type(expected) is type(found):
        # Long texts: say where they part, and show both sides there.
        n = next((i for i, (a, b) in enumerate(zip(expected, found)) if a != b), min(len(expected), len(found)))
        lo = max(0, n - 40)
        raise Failure(f"{what}: differs at offset {n} (lengths: expected {len(expected)}, found {len(found)}): "
                      f"expected {expected[lo:n + 40]!r}, found {found[lo:n + 40]!r}")
    expect(False, what, expected, found)


def run(main):
    """Runs main(); a Failure or any other exception makes the test fail."""
    try:
        main()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception:  # noqa: BLE001 - any surprise is a failure, with its trace
        traceback.print_exc()
        print("FAIL: unexpected exception", file=sys.stderr)
        sys.exit(1)


def clean_env(extra=None, also_drop=()):
    """os.environ without the superserver's variables (and any name starting
    with one of also_drop), then extra on top."""
    drop = SUPERSERVER_PREFIXES + tuple(also_drop)
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra or {})
    return env


class Suite:
    """Test functions taking a fresh temporary directory: @suite.test, then
    suite.main() runs them (or those named on the command line) and prints
    'NAME: N passed, N failed, N skipped'; exit status 1 on a failure or when
    nothing passed."""

    def __init__(self, name, prefix="smtpspool-test-"):
        self.name = name
        self.prefix = prefix
        self.tests = []
        self.results = {"pass": 0, "fail": 0, "skip": 0}

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def run_one(self, fn):
        with tempfile.TemporaryDirectory(prefix=self.prefix) as tmp:
            try:
                fn(tmp)
                self.results["pass"] += 1
                print(f"PASS {fn.__name__}")
            except Skip as s:
                self.results["skip"] += 1
                print(f"SKIP {fn.__name__}: {s}")
            except Exception:  # noqa: BLE001 - a Failure or any surprise, with its trace
                self.results["fail"] += 1
                print(f"FAIL {fn.__name__}")
                traceback.print_exc(file=sys.stdout)

    def main(self, names=()):
        chosen = [t for t in self.tests if not names or t.__name__ in names]
        unknown = set(names) - {t.__name__ for t in self.tests}
        if unknown:
            raise SystemExit(f"no such test: {', '.join(sorted(unknown))}")
        for fn in chosen:
            self.run_one(fn)
        r = self.results
        print(f"{self.name}: {r['pass']} passed, {r['fail']} failed, {r['skip']} skipped")
        sys.exit(1 if r["fail"] or not r["pass"] else 0)


def queued(spool):
    """(id, envelope dict, message.eml octets) of each message in SPOOL/queue, by id."""
    q = os.path.join(spool, "queue")
    ids = sorted(os.listdir(q)) if os.path.isdir(q) else []
    result = []
    for i in ids:
        with open(os.path.join(q, i, "envelope.json"), encoding="utf-8") as f:
            env = json.load(f)
        with open(os.path.join(q, i, "message.eml"), "rb") as f:
            body = f.read()
        result.append((i, env, body))
    return result


# The log lines of --log stderr (smtpspool(8), LOGGING), parsed strictly.
_LOGFMT_PREFIX = re.compile(rb"^smtpspool\[([0-9]+)\]: ")
_LOGFMT_FIELD = re.compile(rb'([a-z0-9_]+)=([!#-<>-\[\]-~]+|"(?:[^"\\\x00-\x1f\x7f]|\\["\\]|\\x[0-9a-f]{2})*")(?: |$)')
_RFC3339 = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")
_JSON_HEAD = ["time", "program", "pid", "event"]


def parse_log_line(line, fmt):
    """One line of `--log stderr --log-format FMT` (bytes, no LF) as
    (event, {key: value}); raises ValueError when it breaks the format.
    logfmt values are decoded (\\xNN kept as the octet); JSON values are
    as the JSON parser gives them, the head keys (time, program, pid)
    left in."""
    if any(b < 0x20 or b == 0x7f for b in line):
        raise ValueError(f"a raw control octet in {line!r}")
    if fmt == "json":
        text = line.decode("utf-8")  # strict: invalid UTF-8 is an error
        obj = json.loads(text)
        if not isinstance(obj, dict) or list(obj)[:4] != _JSON_HEAD:
            raise ValueError(f"not a log object starting with {_JSON_HEAD}: {text}")
        if not _RFC3339.match(obj["time"]) or not isinstance(obj["pid"], int) or not obj["program"]:
            raise ValueError(f"bad time, pid or program: {text}")
        for k, v in obj.items():
            if not re.fullmatch(r"[a-z0-9_]+", k) or not isinstance(v, (str, int)):
                raise ValueError(f"bad key or value {k!r}: {text}")
        return obj["event"], obj
    m = _LOGFMT_PREFIX.match(line)
    if not m:
        raise ValueError(f"no smtpspool[pid]: prefix: {line!r}")
    rest, fields, pos = line[m.end():], {}, 0
    while pos < len(rest):
        f = _LOGFMT_FIELD.match(rest, pos)
        if not f:
            raise ValueError(f"not key=value at {rest[pos:pos + 40]!r} in {line!r}")
        value = f.group(2)
        if value.startswith(b'"'):
            value = re.sub(rb'\\(["\\])|\\x([0-9a-f]{2})',
                           lambda e: e.group(1) or bytes([int(e.group(2), 16)]), value[1:-1])
        fields[f.group(1).decode()] = value.decode("utf-8", "surrogateescape")
        pos = f.end()
    if list(fields)[:1] != ["event"]:
        raise ValueError(f"the first key is not event: {line!r}")
    return fields.pop("event"), fields


def parse_log(output, fmt):
    """Every line of a --log stderr output, parsed: [(event, fields)]."""
    if output and not output.endswith(b"\n"):
        raise ValueError(f"the log does not end with a line end: {output[-80:]!r}")
    return [parse_log_line(line, fmt) for line in output.split(b"\n")[:-1]]
