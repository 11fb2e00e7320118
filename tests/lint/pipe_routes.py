#!/usr/bin/env python3
"""make lint-man: the pipe routes shown to administrators quote the addresses.

A pipe route's command gets the addresses a client chose in its environment
(SENDER, RECIPIENT, LOCAL, DOMAIN; smtpspool-runq(8)); a local part may start
with '-' or hold glob characters. Every pipe route written in the man pages,
the README and examples/ must therefore use these variables inside double
quotes, and smtpspool-runq(8) and smtpspool.conf(5) must tell the reader to
quote them and to use "--". Prints each violation as FILE:LINE: reason and
exits 1 when there is one.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
VARIABLES = ("SENDER", "RECIPIENT", "LOCAL", "DOMAIN")
# $NAME or ${NAME}, for the variables that carry client text.
REFERENCE = re.compile(r"\$(\{)?(" + "|".join(VARIABLES) + r")(?(1)\})(?![A-Za-z0-9_])")


def files():
    for name in sorted(os.listdir(os.path.join(ROOT, "man"))):
        if re.search(r"\.[0-9]$", name):
            yield os.path.join("man", name)
    yield "README.md"
    for top, _, names in os.walk(os.path.join(ROOT, "examples")):
        for name in sorted(names):
            yield os.path.relpath(os.path.join(top, name), ROOT)


def plain(line):
    """A man page line as the reader sees it: groff quotes and dashes as ASCII."""
    for escape, text in (("\\(dq", '"'), ("\\[dq]", '"'), ("\\-", "-"), ("\\e", "\\")):
        line = line.replace(escape, text)
    return line


def unquoted_references(command):
    """The variables of `command` that sh would split and glob: outside "..."."""
    found = []
    quoted = False
    i = 0
    while i < len(command):
        c = command[i]
        if c == "\\" and not quoted:
            i += 2
            continue
        if c == "'" and not quoted:
            end = command.find("'", i + 1)
            i = len(command) if end < 0 else end + 1
            continue
        if c == '"':
            quoted = not quoted
        elif c == "$" and not quoted:
            m = REFERENCE.match(command, i)
            if m:
                found.append(m.group(0))
        i += 1
    return found


def check_routes(errors):
    for rel in files():
        path = os.path.join(ROOT, rel)
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for number, raw in enumerate(lines, 1):
            line = plain(raw)
            at = line.find("pipe:")
            if at < 0:
                continue
            command = line[at + len("pipe:"):]
            # A man page's .B "..." argument: its outer quotes are groff's.
            if raw.lstrip().startswith((".B ", ".BR ", ".I ")) and command.endswith('"'):
                command = command[:-1]
            for ref in unquoted_references(command):
                errors.append(f"{rel}:{number}: {ref} unquoted in a pipe route (write \"{ref}\")")


def check_advice(errors):
    # Each page that describes pipe routes says to quote the variables and to use --.
    for rel in ("man/smtpspool-runq.8", "man/smtpspool.conf.5"):
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            text = plain(f.read())
        if '"$LOCAL"' not in text:
            errors.append(f"{rel}: does not show \"$LOCAL\" quoted for pipe routes")
        if not re.search(r"pipe:[^\n]* -- \"\$LOCAL\"", text):
            errors.append(f"{rel}: no pipe route example passing \"$LOCAL\" after --")


def main():
    errors = []
    check_routes(errors)
    check_advice(errors)
    for e in errors:
        print(e)
    if errors:
        return 1
    print("pipe routes: addresses quoted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
