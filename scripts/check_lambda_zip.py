"""Checks a Lambda zip for provided.al2023: one executable `bootstrap`, an ELF for the given
architecture, needing no glibc symbol version newer than Amazon Linux 2023's 2.34, and, given a
budget, a zip of at most that many bytes.

usage: check_lambda_zip.py ZIP arm64|x86_64 [MAX_BYTES]
"""

import os
import re
import stat
import subprocess
import sys
import tempfile
import zipfile

MAX_GLIBC = (2, 34)
MACHINE = {"arm64": 183, "x86_64": 62}  # ELF e_machine: EM_AARCH64, EM_X86_64


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[2] not in MACHINE:
        sys.exit("usage: check_lambda_zip.py ZIP arm64|x86_64 [MAX_BYTES]")
    path, arch = sys.argv[1], sys.argv[2]
    size = os.path.getsize(path)
    if len(sys.argv) == 4 and size > int(sys.argv[3]):
        sys.exit(f"{path}: {size:,} bytes, over the budget of {int(sys.argv[3]):,} (issue 12's B5; docs/performance.md)")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if names != ["bootstrap"]:
            sys.exit(f"{path}: expected only 'bootstrap', found {names}")
        info = z.getinfo("bootstrap")
        mode = info.external_attr >> 16
        if not (stat.S_ISREG(mode) and mode & 0o111):
            sys.exit(f"{path}: bootstrap is not an executable file (mode {oct(mode)})")
        data = z.read("bootstrap")
    if data[:4] != b"\x7fELF":
        sys.exit(f"{path}: bootstrap is not an ELF binary")
    machine = int.from_bytes(data[18:20], "little")
    if machine != MACHINE[arch]:
        sys.exit(f"{path}: bootstrap is built for ELF machine {machine}, not {arch}")
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        try:
            out = subprocess.run(["readelf", "-V", "--wide", f.name], capture_output=True, text=True, check=True).stdout
        except FileNotFoundError:
            sys.exit("readelf is missing: install Debian's binutils")
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}
    newest = max(versions, default=(0, 0))
    if newest > MAX_GLIBC:
        sys.exit(f"{path}: bootstrap needs GLIBC_{'.'.join(map(str, newest))}, newer than Amazon Linux 2023's 2.34")
    print(f"{path}: {size:,} bytes, bootstrap for {arch}, {len(data):,} bytes, newest glibc symbol GLIBC_{'.'.join(map(str, newest))}")


if __name__ == "__main__":
    main()
