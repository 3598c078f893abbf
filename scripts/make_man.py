#!/usr/bin/env python3
"""Manual pages (man(7) roff) for a swift-argument-parser tool, from its own help:
`TOOL --experimental-dump-help` (the JSON that swift-argument-parser's generate-manual plugin
reads). One page per command: skrun.1, skrun-serve.1, ... Written here rather than through the
plugin because the plugin rebuilds every product in its own configuration, over the release
build's.

    python3 scripts/make_man.py TOOL_BINARY OUTPUT_DIR [--date YYYY-MM-DD] [--version TEXT]
"""
import argparse, datetime, json, os, subprocess


def roff(text):
    out = (text or "").replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + l if l.startswith((".", "'")) else l) for l in out.split("\n"))


def names(arg):
    ns = arg.get("names") or []
    return ", ".join(("-" if n["kind"] == "short" else "--" if n["kind"] == "long" else "-") + n["name"] for n in ns)


def synopsis(cmd, path):
    parts = []
    for a in cmd.get("arguments", []):
        if not a.get("shouldDisplay", True):
            continue
        if a["kind"] == "positional":
            s = "<" + a.get("valueName", "value") + ">"
        else:
            pn = a.get("preferredName") or (a.get("names") or [{"kind": "long", "name": "?"}])[0]
            s = ("-" if pn["kind"] == "short" else "--") + pn["name"]
            if a["kind"] == "option":
                s += " <" + a.get("valueName", "value") + ">"
        if a.get("isRepeating"):
            s += " ..."
        parts.append("[" + s + "]" if a.get("isOptional") else s)
    return "\\fB" + roff(" ".join(path)) + "\\fR " + roff(" ".join(parts))


def page(cmd, path, date, version, subs):
    title = "-".join(path)
    lines = [f'.TH "{title.upper()}" 1 "{date}" "SinkKit {version}" "SinkKit Manual"',
             ".SH NAME", f"{roff(title)} \\- {roff(cmd.get('abstract', ''))}",
             ".SH SYNOPSIS", synopsis(cmd, path)]
    if cmd.get("discussion"):
        lines += [".SH DESCRIPTION", roff(cmd["discussion"])]
    opts = [a for a in cmd.get("arguments", []) if a.get("shouldDisplay", True)]
    if opts:
        lines.append(".SH OPTIONS")
        for a in opts:
            head = "<" + a.get("valueName", "value") + ">" if a["kind"] == "positional" else names(a)
            if a["kind"] == "option":
                head += " <" + a.get("valueName", "value") + ">"
            lines += [".TP", "\\fB" + roff(head) + "\\fR"]
            body = a.get("abstract", "")
            if a.get("discussion"):
                body += "\n" + a["discussion"]
            values = (a.get("completionKind") or {}).get("list", {}).get("values")
            if values:
                body += "\nValues: " + ", ".join(values) + "."
            if "defaultValue" in a and "default" not in a.get("abstract", "").lower():
                body += f"\nDefault: {a['defaultValue']}."
            lines.append(roff(body))
    if subs:
        lines += [".SH SUBCOMMANDS"] + sum(([".TP", "\\fB" + roff(s["commandName"]) + "\\fR", roff(s.get("abstract", "")) + " See \\fB" + roff("-".join(path + [s["commandName"]])) + "\\fR(1)."] for s in subs), [])
    lines += [".SH EXIT STATUS", "0 done; 2 usage error (a bad flag or value); 3 input error (a malformed or unsupported file); 4 I/O error; 130, 143, 129 interrupted by SIGINT, SIGTERM, SIGHUP.",
              ".SH SEE ALSO", ", ".join(f"\\fB{p}\\fR(1)" for p in ("skrun", "skconv") if p != title) + "; the README and Formats/SKM.md in /usr/share/doc/sinkkit.",
              ".SH AUTHORS", "The SinkKit authors."]
    return "\n".join(lines) + "\n"


def walk(cmd, path, date, version, out):
    subs = [s for s in cmd.get("subcommands", []) if s.get("shouldDisplay", True) and s["commandName"] != "help"]
    with open(os.path.join(out, "-".join(path) + ".1"), "w") as f:
        f.write(page(cmd, path, date, version, subs))
    n = 1
    for s in subs:
        n += walk(s, path + [s["commandName"]], date, version, out)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool")
    ap.add_argument("out")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--version", default=None)
    a = ap.parse_args()
    dump = json.loads(subprocess.run([a.tool, "--experimental-dump-help"], capture_output=True, text=True, check=True).stdout)
    version = a.version or subprocess.run([a.tool, "--version"], capture_output=True, text=True).stdout.strip()
    os.makedirs(a.out, exist_ok=True)
    cmd = dump["command"]
    print(walk(cmd, [cmd["commandName"]], a.date, version, a.out))


if __name__ == "__main__":
    main()
