"""XDP through a pinned bpf_link, and finding the bpf_link that owns an interface's XDP hook.

In: program fds, an ifindex and its network namespace, a bpffs path for the link pin.
Out: ``LinkInfo`` (link id, program id, ifindex) of links found, created, updated or detached.

A link attachment lives exactly as long as the link object, so every link created here is pinned
before its fd is closed (an Ansible module exits after each task). BPF_LINK_CREATE resolves the
ifindex in the calling thread's network namespace, so creation runs inside ``netns`` (setns), not
only the netlink socket. Netlink cannot replace or remove a link's program (EBUSY), so a hook owned
by a link is changed only through the link: BPF_LINK_UPDATE with BPF_F_REPLACE (a compare-and-swap
on the old program) or BPF_LINK_DETACH.
"""

from __future__ import annotations

import os
from typing import Optional

from . import pins, syscalls
from .fd import FdOwner, each_loaded
from .netlink import MODE_FLAGS
from .netns import entered


def find_xdp_link(ifindex: int, prog_id: int) -> Optional[syscalls.LinkInfo]:
    """The XDP link running ``prog_id`` on ``ifindex``, or None when the hook is not link-owned.

    Link info holds only the ifindex, which is relative to a namespace, so the program id (read
    from the hook over netlink) is what ties a link to this interface.
    """
    for info in each_loaded("link", syscalls.link_get_next_id, syscalls.link_get_fd_by_id, syscalls.link_info):
        if info.type == syscalls.LINK_TYPE_XDP and info.ifindex == ifindex and info.prog_id == prog_id:
            return info
    return None


def open_link(link_pin: Optional[str], link_id: int = 0) -> FdOwner:
    """An fd for the link pinned at ``link_pin`` or, without a pin, the link with ``link_id``."""
    if link_pin:
        return FdOwner(syscalls.obj_get(link_pin), f"link {link_pin}")
    return FdOwner(syscalls.link_get_fd_by_id(link_id), f"link {link_id}")


def create_xdp_link(prog_fd: int, ifindex: int, mode: str, netns: Optional[str], link_pin: str) -> syscalls.LinkInfo:
    """Attach ``prog_fd`` to ``ifindex`` (in ``netns``) through a new link pinned at ``link_pin``.

    A link still pinned there is a defunct leftover (its hook is empty, or link_create would have
    failed with EBUSY), so the new pin replaces it. If pinning fails the link fd is closed, which
    detaches the program again: nothing is left.
    """
    with entered(netns):
        fd = syscalls.link_create(prog_fd, ifindex, syscalls.ATTACH_XDP, MODE_FLAGS[mode])
    with FdOwner(fd, f"link on ifindex {ifindex}") as link:
        pins.makedirs(os.path.dirname(link_pin))
        pins.replace(link.fd, link_pin)
        return syscalls.link_info(link.fd)


def update_xdp_link(link: FdOwner, new_prog_fd: int, old_prog_fd: int) -> syscalls.LinkInfo:
    """Swap the link's program for ``new_prog_fd`` only if it still runs ``old_prog_fd``."""
    syscalls.link_update(link.fd, new_prog_fd, syscalls.F_REPLACE, old_prog_fd)
    return syscalls.link_info(link.fd)


def detach_xdp_link(link: FdOwner, link_pin: Optional[str]) -> syscalls.LinkInfo:
    """Detach the link's program, then remove its pin (a detached link is a useless leftover), and the
    record directory if that leaves it empty."""
    syscalls.link_detach(link.fd)
    if link_pin:
        pins.unpin_with_dir(link_pin)
    return syscalls.link_info(link.fd)
