"""Read the records a program wrote into a BPF ring buffer, straight from the kernel's pages.

In: the bpffs path of a pinned ``BPF_MAP_TYPE_RINGBUF`` map and its size in bytes. Out:
``records(path, size)``, every committed record not yet consumed, oldest first (discarded
ones skipped); the consumer position is advanced past them, as a user-space reader would.

Independent of the compiler and of our loader: the map is opened with ``BPF_OBJ_GET`` through
``ctypes`` and read through ``mmap`` with the layout in the kernel's ``kernel/bpf/ringbuf.c``:
page 0 holds the consumer position (read-write), page 1 the producer position, then the data
area, mapped twice back to back so a record that wraps reads contiguously. Each record starts
with an 8-byte header: a u32 length whose bit 31 means "still being written" and bit 30
"discarded", and a page offset; records are padded to 8 bytes.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct

BPF_OBJ_GET = 7
_BUSY, _DISCARD = 1 << 31, 1 << 30
_HEADER = 8


def _obj_get(path: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(128)
    name = ctypes.create_string_buffer(path.encode())
    struct.pack_into("<Q", attr, 0, ctypes.addressof(name))
    fd = libc.syscall(321, BPF_OBJ_GET, attr, len(attr))  # __NR_bpf on x86_64
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"BPF_OBJ_GET {path}: {os.strerror(err)}")
    return fd


def records(path: str, size: int) -> list[bytes]:
    page = mmap.PAGESIZE
    fd = _obj_get(str(path))
    try:
        consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        producer = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
    finally:
        os.close(fd)
    try:
        (cons,) = struct.unpack_from("<Q", consumer, 0)
        (prod,) = struct.unpack_from("<Q", producer, 0)
        out = []
        while cons < prod:
            at = page + (cons & (size - 1))
            (length,) = struct.unpack_from("<I", producer, at)
            if length & _BUSY:
                break
            data_len = length & ~(_BUSY | _DISCARD)
            if not length & _DISCARD:
                out.append(bytes(producer[at + _HEADER:at + _HEADER + data_len]))
            cons += (data_len + _HEADER + 7) // 8 * 8
        struct.pack_into("<Q", consumer, 0, cons)
        return out
    finally:
        consumer.close()
        producer.close()
