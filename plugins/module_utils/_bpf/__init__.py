"""The BPF loader that runs on managed hosts: bpf(2) via ctypes, BPF ELF objects via pyelftools.

Layers, bottom up: ``syscalls`` (one function per bpf(2) command) and ``errors``; ``objfile``/``btf``
(ELF object -> ObjectSpec, pure); ``tag`` (offline kernel tags); ``maps``/``program`` (fd-owning kernel
objects); ``pins`` (bpffs paths); ``load`` (read-only plan, then apply, for loading an object into pins).
"""
