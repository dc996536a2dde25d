"""A perf event a program can write to with bpf_perf_event_output, and the samples it received.

In: a CPU number. Out: ``BpfOutputEvent(cpu)``, a ``PERF_COUNT_SW_BPF_OUTPUT`` software event
opened on that CPU (``perf_event_open`` through ``ctypes``) with its ring mapped; ``fd`` goes into a
``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` slot, ``samples()`` returns the raw payloads of the
``PERF_RECORD_SAMPLE`` records written so far, oldest first. Layouts from
``include/uapi/linux/perf_event.h``: ``perf_event_mmap_page.data_head`` at byte 1024,
``data_offset``/``data_size`` at 1040/1048; a sample with ``PERF_SAMPLE_RAW`` is the 8-byte
record header, a u32 size and that many bytes (the payload, padded to 8-byte alignment).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct

PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, PERF_SAMPLE_RAW = 1, 10, 1 << 10
PERF_RECORD_SAMPLE = 9
PERF_FLAG_FD_CLOEXEC = 1 << 3
NR_PERF_EVENT_OPEN = 298  # x86_64
ATTR_SIZE = 128
DATA_PAGES = 8


class BpfOutputEvent:
    def __init__(self, cpu: int):
        attr = ctypes.create_string_buffer(ATTR_SIZE)
        struct.pack_into("<IIQQQ", attr, 0, PERF_TYPE_SOFTWARE, ATTR_SIZE, PERF_COUNT_SW_BPF_OUTPUT, 1,
                         PERF_SAMPLE_RAW)
        struct.pack_into("<I", attr, 48, 1)  # wakeup_events
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.syscall(NR_PERF_EVENT_OPEN, attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"perf_event_open: {os.strerror(err)}")
        self.fd = fd
        self.ring = mmap.mmap(fd, (1 + DATA_PAGES) * mmap.PAGESIZE, mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE)

    def samples(self) -> list[bytes]:
        head, tail, offset, size = (struct.unpack_from("<Q", self.ring, at)[0] for at in (1024, 1032, 1040, 1048))
        out = []
        while tail < head:
            at = offset + tail % size
            kind, _misc, length = struct.unpack_from("<IHH", self.ring, at)
            if kind == PERF_RECORD_SAMPLE:
                (raw_size,) = struct.unpack_from("<I", self.ring, at + 8)
                out.append(bytes(self.ring[at + 12:at + 12 + raw_size]))
            tail += length
        return out

    def close(self) -> None:
        self.ring.close()
        os.close(self.fd)
