#!/usr/bin/env python3
"""Decodes QPACK interop record files with ls-qpack (through pylsqpack, the
binding aioquic uses) and writes each as QIF: an independent decoder for our
QPACK encoder's output.

    qpack_decode.py OUTDIR FILE:TABLE_SIZE:BLOCKED_STREAMS ...

For each FILE, writes OUTDIR/<basename of FILE>.qif: its field sections in
stream order, `name<TAB>value` lines, an empty line after each section.
Exit status 1, with the file and ls-qpack's complaint on stderr, if any file
fails to decode or leaves a section blocked.
"""

import os
import struct
import sys

import pylsqpack


def records(data):
    at = 0
    while at < len(data):
        if at + 12 > len(data):
            raise ValueError("truncated record header")
        stream_id, length = struct.unpack(">QI", data[at:at + 12])
        at += 12
        if at + length > len(data):
            raise ValueError("truncated record")
        yield stream_id, data[at:at + length]
        at += length


def decode(path, table_size, blocked_streams):
    decoder = pylsqpack.Decoder(table_size, blocked_streams)
    sections = {}
    blocked = set()
    with open(path, "rb") as f:
        data = f.read()
    for stream_id, chunk in records(data):
        if stream_id == 0:
            for unblocked in decoder.feed_encoder(chunk):
                _, headers = decoder.resume_header(unblocked)
                sections[unblocked] = headers
                blocked.discard(unblocked)
        else:
            try:
                _, headers = decoder.feed_header(stream_id, chunk)
                sections[stream_id] = headers
            except pylsqpack.StreamBlocked:
                blocked.add(stream_id)
    if blocked:
        raise ValueError("streams still blocked at the end: %s" % sorted(blocked))
    out = bytearray()
    for stream_id in sorted(sections):
        for name, value in sections[stream_id]:
            out += name + b"\t" + value + b"\n"
        out += b"\n"
    return bytes(out)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    for spec in sys.argv[2:]:
        path, table_size, blocked_streams = spec.rsplit(":", 2)
        try:
            qif = decode(path, int(table_size), int(blocked_streams))
        except Exception as e:  # pylsqpack's errors and ours alike
            sys.stderr.write("%s: %s: %s\n" % (path, type(e).__name__, e))
            sys.exit(1)
        with open(os.path.join(outdir, os.path.basename(path) + ".qif"), "wb") as f:
            f.write(qif)


if __name__ == "__main__":
    main()
