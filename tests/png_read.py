"""Minimal PNG reader for the tests (8-bit grey / RGB / RGBA / palette indices, non-interlaced, every filter),
so shell tests can check image contents with nothing but the standard library.
usage: png_read.py FILE  -> prints "W H C fraction_of_bytes_equal_255 fraction_equal_0" """
import struct
import sys
import zlib


def read(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace or ctype not in (0, 2, 3, 6):
                raise ValueError(f"{path}: unsupported PNG (depth {depth}, type {ctype})")
            c = {0: 1, 2: 3, 3: 1, 6: 4}[ctype]  # 3: palette indices (GTA5 labels)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride = zlib.decompress(idat), w * c
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = row[i - c] if i >= c else 0
            b, cc = prev[i], prev[i - c] if i >= c else 0
            if f == 1:
                row[i] = (row[i] + a) & 255
            elif f == 2:
                row[i] = (row[i] + b) & 255
            elif f == 3:
                row[i] = (row[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else cc)) & 255
        out += row
        prev = row
    return w, h, c, bytes(out)


if __name__ == "__main__":
    w, h, c, px = read(sys.argv[1])
    print(w, h, c, f"{px.count(255) / len(px):.6f}", f"{px.count(0) / len(px):.6f}")
