"""Lists a tar archive (gzip or plain) as JSON, read with Python's tarfile module.

Names and link targets are given as hex of their bytes, so non-UTF-8 names survive.
"""

import json
import sys
import tarfile

TYPES = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.FIFOTYPE: "fifo",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
}


def raw(text):
    return text.encode("utf-8", "surrogateescape").hex()


def main():
    rows = []
    with tarfile.open(sys.argv[1], encoding="utf-8", errors="surrogateescape") as archive:
        for member in archive:
            data = b""
            if member.isfile():
                data = archive.extractfile(member).read()
            rows.append(
                {
                    "name": raw(member.name),
                    "type": TYPES.get(member.type, member.type.decode("latin-1")),
                    "mode": member.mode,
                    "uid": member.uid,
                    "gid": member.gid,
                    "uname": member.uname,
                    "gname": member.gname,
                    "mtime": member.mtime,
                    "size": member.size,
                    "linkname": raw(member.linkname),
                    "content": data.hex(),
                    "pax": sorted(member.pax_headers.keys()),
                }
            )
    json.dump(rows, sys.stdout)


main()
