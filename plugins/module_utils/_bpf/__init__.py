"""The BPF loader that runs on managed hosts: bpf(2) via ctypes, BPF ELF objects via pyelftools.

Layers, bottom up: ``syscalls`` (one function per bpf(2) command) and ``errors``; ``objfile``/``btf``
(ELF object -> ObjectSpec, pure); ``tag`` (offline kernel tags); ``fd``, ``maps``/``program``/``link``
(fd-owning kernel objects); ``pins``/``pinned`` (bpffs paths and what is pinned there); ``netns``/``netlink``
(an interface's XDP hook); plans, each read-only first and then applied: ``load`` (an object into pins),
``progarray`` (jump-table slots), ``attach`` (XDP hooks).
"""
