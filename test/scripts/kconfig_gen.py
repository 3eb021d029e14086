#!/usr/bin/python3
"""Helper of test_kconfig.sh: turn hsmc's Kconfig plus a .config fragment
into a Zephyr-style autoconf header, and check that Kconfig and
config/hsmc_config.h describe the same knobs.

usage: kconfig_gen.py KCONFIG HEADER OUTDIR [FRAGMENT]

Writes into OUTDIR:
  autoconf.h    kconfiglib's write_autoconf output (CONFIG_ prefix)
  expected.txt  one "HSMC_X=value" line per header knob, as Kconfig set it
  probe.c       a program printing every knob's value in the same format

Fails (exit 1, reasons on stderr) on any Kconfig warning, on a fragment
assignment that did not take effect (unknown symbol, out of range, unmet
dependency), on a header knob without a Kconfig symbol or without a
CONFIG_ mapping line, and on an HSMC_ Kconfig value symbol the header lacks.
"""
import os
import re
import sys

# Must be set before kconfiglib reads the environment in Kconfig().
os.environ["KCONFIG_WARN_UNDEF"] = "y"
os.environ["KCONFIG_WARN_UNDEF_ASSIGN"] = "y"

import kconfiglib  # noqa: E402  (python3-kconfiglib)


def fail(errors):
    for e in errors:
        print("kconfig_gen: " + e, file=sys.stderr)
    sys.exit(1)


def header_knobs(text):
    """Knobs are the '#ifndef HSMC_X' defaults; the include guard is not one."""
    knobs = []
    for m in re.finditer(r"^\s*#\s*ifndef\s+(HSMC_\w+)\s*$", text, re.M):
        name = m.group(1)
        if name != "HSMC_CONFIG_H" and name not in knobs:
            knobs.append(name)
    return knobs


def parse_fragment(path):
    """Assignments of a .config fragment: {name without CONFIG_: value}."""
    wanted = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            m = re.match(r"^# CONFIG_(\w+) is not set$", line)
            if m:
                wanted[m.group(1)] = "n"
                continue
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^CONFIG_(\w+)=(.*)$", line)
            if not m:
                fail(["%s: cannot read line %r" % (path, line)])
            wanted[m.group(1)] = m.group(2).strip('"')
    return wanted


def main(argv):
    if len(argv) not in (4, 5):
        fail(["usage: kconfig_gen.py KCONFIG HEADER OUTDIR [FRAGMENT]"])
    kconfig_path, header_path, outdir = argv[1], argv[2], argv[3]
    fragment = argv[4] if len(argv) == 5 else None
    errors = []

    kconf = kconfiglib.Kconfig(kconfig_path, warn_to_stderr=False)
    errors += ["Kconfig warning: " + w for w in kconf.warnings]
    parse_warnings = len(kconf.warnings)

    # CONFIG_HSMC=y first (HSMC defaults to n), then the fragment on top.
    base = os.path.join(outdir, "base.config")
    with open(base, "w") as f:
        f.write("CONFIG_HSMC=y\n")
    wanted = {"HSMC": "y"}
    kconf.load_config(base, replace=True)
    if fragment:
        wanted.update(parse_fragment(fragment))
        kconf.load_config(fragment, replace=False)
    errors += ["config warning: " + w for w in kconf.warnings[parse_warnings:]]

    for name, value in wanted.items():
        sym = kconf.syms.get(name)
        if sym is None or not sym.nodes:
            errors.append("fragment sets undefined symbol CONFIG_%s" % name)
        elif sym.str_value != value:
            errors.append("CONFIG_%s=%s did not take effect (value is %r; "
                          "out of range or dependency not met)"
                          % (name, value, sym.str_value))

    with open(header_path) as f:
        header = f.read()
    knobs = header_knobs(header)
    if not knobs:
        errors.append("no '#ifndef HSMC_X' knobs found in " + header_path)

    expected = []
    for knob in knobs:
        sym = kconf.syms.get(knob)
        if sym is None or not sym.nodes:
            errors.append("%s (config header) has no Kconfig symbol %s"
                          % (knob, knob))
            continue
        if "CONFIG_" + knob not in header:
            errors.append("%s has no CONFIG_%s mapping line in %s"
                          % (knob, knob, header_path))
        if sym.type != kconfiglib.BOOL and sym.str_value == "":
            errors.append("%s has no value with CONFIG_HSMC=y (unmet dependency?)"
                          % knob)
        elif sym.type == kconfiglib.BOOL:
            expected.append("%s=%d" % (knob, 1 if sym.str_value == "y" else 0))
        elif sym.type in (kconfiglib.INT, kconfiglib.HEX):
            expected.append("%s=%d" % (knob, int(sym.str_value, 0)))
        else:
            errors.append("%s: Kconfig type must be int or bool" % knob)

    # The other direction: a value symbol in Kconfig the header ignores
    # would be a knob that silently does nothing.
    for sym in kconf.unique_defined_syms:
        if (sym.name.startswith("HSMC_") and sym.choice is None
                and sym.type in (kconfiglib.INT, kconfiglib.HEX, kconfiglib.BOOL)
                and sym.name not in knobs):
            errors.append("Kconfig symbol %s is not a knob of %s"
                          % (sym.name, header_path))

    if errors:
        fail(errors)

    kconf.write_autoconf(os.path.join(outdir, "autoconf.h"))
    with open(os.path.join(outdir, "expected.txt"), "w") as f:
        f.write("".join(line + "\n" for line in expected))
    with open(os.path.join(outdir, "probe.c"), "w") as f:
        f.write("/* generated by kconfig_gen.py: print every hsmc knob */\n"
                "#include <stdio.h>\n#include \"hsmc_config.h\"\n"
                "int main(void)\n{\n")
        for knob in knobs:
            f.write('    printf("%%s=%%ld\\n", "%s", (long)(%s));\n'
                    % (knob, knob))
        f.write("    return 0;\n}\n")
    print("kconfig_gen: %d knobs, %d Kconfig symbols, autoconf written"
          % (len(knobs), len(kconf.unique_defined_syms)))


if __name__ == "__main__":
    main(sys.argv)
