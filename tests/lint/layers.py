#!/usr/bin/env python3
"""make lint-layers: the dependency directions of ARCHITECTURE.md, checked.

Each folder of src/ is a layer; a file may include headers of the layers its
own layer lists below, and no other project header. Some headers of the
system and of libraries are allowed only where they belong. Prints every
violation as FILE:LINE: reason, and exits 1 when there is one.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SRC = os.path.join(ROOT, "src")

# Layer -> the layers it may include (itself always).
ALLOWED = {
    "base": set(),
    "model": {"base"},
    "smtp": {"base", "model"},
    "server": {"base", "model", "smtp"},
    "spool": {"base", "model", "smtp"},
    "policy": {"base", "model", "smtp"},
    "delivery": {"base", "model", "smtp", "spool"},
    "cli": {"base", "model", "smtp", "server", "spool", "policy", "delivery"},
}

# The pure layers do no I/O: no header that opens, reads, polls, spawns or
# sleeps (bytes in, replies and port calls out).
PURE = {"model", "smtp"}
IO_HEADERS = re.compile(
    r"^(unistd\.h|fcntl\.h|poll\.h|dirent\.h|spawn\.h|syslog\.h|netdb\.h|signal\.h|csignal|"
    r"sys/.*|fstream|iostream|cstdio|stdio\.h|thread|mutex|future|filesystem|crypt\.h|"
    r"openssl/.*|curl/.*|boost/.*|nlohmann/.*|amqp.*\.h|rabbitmq-c/.*)$")

# Library headers and the only places that may include them.
LIBRARY = [
    (re.compile(r"^nlohmann/"), lambda path: path.startswith("spool/"), "nlohmann/json only in spool/"),
    (re.compile(r"^boost/program_options"), lambda path: path == "cli/config.cpp",
     "Boost.ProgramOptions only in cli/config.cpp"),
    (re.compile(r"^openssl/"), lambda path: path.startswith("server/tls"),
     "OpenSSL only in server/tls"),
    (re.compile(r"^curl/"), lambda path: path == "delivery/webhook_deliverer.cpp",
     "libcurl only in delivery/webhook_deliverer.cpp"),
    (re.compile(r"^(amqp[a-z_]*\.h|rabbitmq-c/)"), lambda path: path == "delivery/amqp_deliverer.cpp",
     "librabbitmq only in delivery/amqp_deliverer.cpp"),
]

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def main():
    problems = []
    layers_seen = set()
    for layer in sorted(os.listdir(SRC)):
        folder = os.path.join(SRC, layer)
        if not os.path.isdir(folder):
            continue
        layers_seen.add(layer)
        if layer not in ALLOWED:
            problems.append(f"src/{layer}: a folder that is not a layer (add it to tests/lint/layers.py and ARCHITECTURE.md)")
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".cpp", ".hpp")):
                continue
            rel = f"{layer}/{name}"
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    kind, header = m.groups()
                    where = f"src/{rel}:{number}"
                    if kind == '"':
                        if header == "revision.h":
                            continue
                        if "/" not in header:
                            problems.append(f"{where}: include \"{header}\" by its layer (\"LAYER/{header}\")")
                            continue
                        target = header.split("/", 1)[0]
                        if target != layer and target not in ALLOWED.get(layer, set()):
                            problems.append(f"{where}: {layer}/ may not include {header} ({layer} -> {target})")
                        if not os.path.exists(os.path.join(SRC, header)):
                            problems.append(f"{where}: {header} does not exist")
                        continue
                    if layer in PURE and IO_HEADERS.match(header):
                        problems.append(f"{where}: <{header}> in the pure layer {layer}/")
                    for pattern, allowed, rule in LIBRARY:
                        if pattern.match(header) and not allowed(rel):
                            problems.append(f"{where}: <{header}>: {rule}")
    for layer in ALLOWED:
        if layer not in layers_seen:
            problems.append(f"src/{layer}: listed as a layer but missing")
    loose = [n for n in os.listdir(SRC) if os.path.isfile(os.path.join(SRC, n))]
    for name in sorted(loose):
        problems.append(f"src/{name}: every source file belongs to a layer folder")
    for p in problems:
        print(p)
    if problems:
        print(f"lint-layers: {len(problems)} violation(s)")
        return 1
    print("lint-layers: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
