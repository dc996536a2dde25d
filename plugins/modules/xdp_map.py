#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""whistler.xdp.xdp_map: the contents of a pinned BPF map as desired state.

In: the task's options (``entries`` as a dict or a list of {key, value}, passed on as given). Out:
what was added, updated and removed, the listed entries after the task, optionally the whole map,
and a before/after diff by key and field. Plans with ``_bpf.mapentries.plan_map_entries``
(read-only: validates every entry against the JSON Schema of the map's BTF) and writes only outside
check mode. In check mode it plans through the overlay (``_overlay``): a map an earlier task of the run
would create is planned on as created (empty, typed by its object's BTF), one it would remove as gone.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_map
short_description: Manage the entries of a pinned BPF map (block lists, per-port configuration)
version_added: 1.0.0
description:
  - Makes the map pinned at O(map) hold the given O(entries), so that the XDP programs reading it see the
    desired configuration, for example a block list of addresses and ports or a per-port settings array.
  - Keys and values are read and written through the map's BTF type information, the way
    C(bpftool map dump) shows them. An integer is a number; a C(struct) is a dict of all its fields by
    name (bitfields included); an array is a list of all its elements; a C(char) array is text; an
    C(enum) is the name of an enumerator (or a number); a C(union) is a dict of one of its members when
    written (all of them when read). Integers typed C(__be16), C(__be32) or C(__be64) are big-endian in
    the map, and a C(__be32) also takes an IPv4 address such as C(10.0.0.1).
  - Keys of an LPM trie whose data is 4 or 16 bytes are IP networks such as C(10.0.0.0/8) or
    C(2001:db8::/32); other LPM keys are dicts of C(prefixlen) and C(data).
  - A map without BTF type information has keys and values that are unsigned integers of its key and
    value sizes, or hex digits (two per byte) when the size is not 1, 2, 4 or 8 bytes.
  - 'Every entry is checked against a JSON Schema derived from the map''s types (integer ranges, required
    fields, no unknown fields, array lengths) before anything is written. All problems are reported at
    once, each naming the entry and the field, for example
    C(entries[3].value.port: 70000 is greater than the maximum of 65535).'
  - Values are compared after decoding, so the task reports a change only when a value really differs.
  - Keys are written in place (C(BPF_ANY)), changed keys before new ones; keys that must go are deleted
    afterwards, so that a program never misses an entry that stays. When a hash or LPM map could not hold
    the old and new keys together, the deletions come first. If a write fails, the keys already written get
    their previous values back.
  - Arrays always hold all their elements; removing an element (O(state=absent), O(exclusive)) writes
    zeros, its initial value.
  - Per-CPU maps (V(percpu_hash), V(percpu_array), V(lru_percpu_hash)) are read-only here, because each CPU
    holds a value of its own; O(contents) reads them (a list of values, one per possible CPU).
    Prog-arrays (see M(whistler.xdp.xdp_prog_array)), ring buffers and other map types are refused.
  - An LRU hash evicts entries when it is full, the ones written by this module too; the module warns
    when a key it wrote is already gone at the end of the task.
  - Maps are not tied to a network namespace, so the module needs none. Tasks on one host that change maps pinned in the same directory take turns (an exclusive
    C(flock) on the directory holding O(map)).
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  map:
    description:
      - Path of the pinned map on bpffs, for example C(/sys/fs/bpf/xdp/maps/blocklist).
    type: path
    required: true
  entries:
    description:
      - The entries to manage, either as a dict of key to value, or as a list of dicts with C(key) and
        C(value).
      - In the dict form keys are text, read according to the key type; integers in decimal or C(0x) hex,
        struct keys as JSON text (as M(whistler.xdp.xdp_info) shows them), for example
        C({"addr":"10.0.0.1","port":22,"proto":6}).
      - With O(state=absent), the keys to remove; a key is removed only if it holds the given value, or
        whatever it holds when the value is C(null) or left out.
    type: raw
    default: []
  exclusive:
    description:
      - Remove every key not listed in O(entries).
      - With O(state=absent), remove every key.
    type: bool
    default: false
  state:
    description:
      - V(present) makes the keys in O(entries) hold the given values.
      - V(absent) removes them. With nothing pinned at O(map) (a teardown that unloaded the object already), there is
        nothing to remove, so the task changes nothing and succeeds.
    type: str
    choices: [present, absent]
    default: present
  contents:
    description:
      - Return the whole map after the task (predicted in check mode) in RV(contents).
      - This is how to read a per-CPU map. Leave it off for big maps.
    type: bool
    default: false
extends_documentation_fragment:
  - whistler.xdp._attributes
  - whistler.xdp._attributes.CHECK_OVERLAY
  - whistler.xdp._attributes.PLATFORM
  - whistler.xdp._attributes.REQUIREMENTS
  - whistler.xdp._attributes.ACTIONGROUP_XDP
requirements:
  - jsonschema
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details:
      - The action plugin gives the module, in check mode, what earlier check-mode tasks of the run planned (see O(_check_overlay)).
  check_mode:
    support: full
    details:
      - The entries are planned on the host as the earlier check-mode tasks of the same run would leave it. A map that an
        earlier M(whistler.xdp.xdp_load) would create (a first load, or an incompatible map it would replace) is planned on
        as the kernel would create it, empty (an array holds zeros at every index), with the types of the object that
        task loads, so entries are checked against the same JSON Schema as for the real map. A map the load keeps is
        planned on with its current contents. A map an earlier unload would remove is gone, so O(state=present) fails as
        the real run would and O(state=absent) changes nothing.
      - Earlier M(whistler.xdp.xdp_map) tasks of the run are not part of the plan (their writes are not seen by a later
        one on the same keys).
  diff_mode:
    support: full
    details:
      - The diff shows the value of every listed or removed key before and after, field by field.
  idempotent:
    support: full
    details:
      - Not when a program changes the listed keys itself (counters), or an LRU map evicts them.
seealso:
  - module: whistler.xdp.xdp_load
  - module: whistler.xdp.xdp_info
  - module: whistler.xdp.xdp_prog_array
"""

EXAMPLES = r"""
- name: Block SSH and a DNS server's UDP port from two sources (struct flow_key {__be32 addr; __be16 port; __u8 proto;})
  whistler.xdp.xdp_map:
    map: /sys/fs/bpf/xdp/maps/blocklist
    entries:
      - key: {addr: 10.0.0.7, port: 22, proto: 6}
        value: 1
      - key: {addr: 10.0.0.9, port: 53, proto: 17}
        value: 1
    exclusive: true

- name: Configure ports 22 and 80 (an array of struct port_config)
  whistler.xdp.xdp_map:
    map: /sys/fs/bpf/xdp/maps/port_config
    entries:
      22: {verdict: VERDICT_DROP, rate_limit: 0, enabled: 1, log: 1, level: 3, name: ssh, allowed: [0, 0, 0]}
      80: {verdict: VERDICT_PASS, rate_limit: 1000, enabled: 1, log: 0, level: 0, name: http, allowed: [1, 2, 3]}
  diff: true

- name: Drop whole networks (an LPM trie of struct {__u32 prefixlen; __u8 data[4];})
  whistler.xdp.xdp_map:
    map: /sys/fs/bpf/xdp/maps/nets
    entries:
      10.0.0.0/8: VERDICT_DROP
      192.168.1.0/24: VERDICT_PASS

- name: Unblock one network
  whistler.xdp.xdp_map:
    map: /sys/fs/bpf/xdp/maps/nets
    entries:
      10.0.0.0/8: null
    state: absent

- name: Read the per-CPU counters
  whistler.xdp.xdp_map:
    map: /sys/fs/bpf/xdp/maps/stats
    contents: true
  register: stats
"""

RETURN = r"""
map_id:
  description:
    - Id of the map; null with O(state=absent) when nothing is pinned at O(map), and in check mode for a map not
      created yet.
  returned: success
  type: int
  sample: 77
map_type:
  description: Map type as C(bpftool) spells it; null with O(state=absent) when nothing is pinned at O(map).
  returned: success
  type: str
  sample: hash
max_entries:
  description: Maximum number of entries of the map; null with O(state=absent) when nothing is pinned at O(map).
  returned: success
  type: int
  sample: 16
added:
  description: Keys written that were not there before (predicted in check mode).
  returned: success
  type: list
  elements: raw
  sample: [{"addr": 167772167, "port": 22, "proto": 6}]
updated:
  description: Keys whose value was changed.
  returned: success
  type: list
  elements: raw
  sample: ["10.0.0.0/8"]
removed:
  description: Keys deleted (for an array, elements reset to zeros).
  returned: success
  type: list
  elements: raw
  sample: [80]
entries:
  description:
    - The listed keys that hold a value after the task, with that value, as the map's types read them.
  returned: success
  type: list
  elements: dict
  sample: [{"key": "10.0.0.0/8", "value": "VERDICT_DROP"}]
contents:
  description:
    - Every entry of the map after the task, ordered by key; for a per-CPU map each value is a list with
      one value per possible CPU.
  returned: when O(contents=true)
  type: list
  elements: dict
  sample: [{"key": 0, "value": [12, 7]}, {"key": 1, "value": [0, 3]}]
"""

import os  # noqa: E402  (Ansible modules import after the docs)
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._diff import Diff  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._imports import check_requirements  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._module_base import (  # noqa: E402
    CHECK_OVERLAY_SPEC,
    loader_errors,
    plan_and_apply,
)

try:
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.mapentries import (
        apply_map_entries,
        plan_map_entries,
    )
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pins import check_path
    from ansible_collections.whistler.xdp.plugins.module_utils._overlay import Overlay, public
except ImportError:
    LOADER_IMPORT_ERROR = traceback.format_exc()
else:
    LOADER_IMPORT_ERROR = None

ARGUMENT_SPEC = dict(
    CHECK_OVERLAY_SPEC,
    map=dict(type="path", required=True),
    entries=dict(type="raw", default=[]),
    exclusive=dict(type="bool", default=False),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    contents=dict(type="bool", default=False),
)


def run(module, overlay):
    params = module.params
    with loader_errors(module):
        map_pin = check_path(params["map"], "map")
        plan, result = plan_and_apply(
            module, lambda: plan_map_entries(map_pin, params["entries"], exclusive=params["exclusive"],
                                             state=params["state"], contents=params["contents"],
                                             reader=overlay.reader()),
            apply_map_entries, lambda plan: [os.path.dirname(plan.map_pin)])
    for warning in result.warnings if result is not None else ():
        module.warn(warning)
    diff = Diff()
    for label in dict.fromkeys(list(plan.before) + list(plan.after)):
        diff.record(str(label), plan.before.get(label), plan.after.get(label))
    pinned = bool(plan.map_id)  # an absent plan on a map that is gone has no map
    outcome = dict(changed=plan.changed, map_id=plan.map_id if pinned else None,
                   map_type=plan.map_type if pinned else None, max_entries=plan.max_entries if pinned else None,
                   added=list(plan.added), updated=list(plan.updated), removed=list(plan.removed),
                   entries=list(plan.entries))
    if params["contents"]:
        outcome["contents"] = list(plan.contents)
    if module._diff:
        outcome["diff"] = diff.result()
    return outcome


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    check_requirements(module, LOADER_IMPORT_ERROR, also=("jsonschema",))
    overlay = Overlay.from_module(module)
    module.exit_json(**public(run(module, overlay)))


if __name__ == "__main__":
    main()
