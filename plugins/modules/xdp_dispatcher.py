#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""whistler.xdp.xdp_dispatcher: a tail-call dispatcher, its handlers, jump table and interfaces as one state.

In: the task's options (the action plugin of the same name compiles ``src`` on the controller and passes
the object it shipped into the remote temp dir as ``object``). Out: the generation that is live, its
programs (old and new tags), slots, interfaces, test results, and an operator's diff. Plans with
``_bpf.dispatcher.plan`` (read-only), runs the packet tests on a private test instance (also in check
mode), and applies with ``_bpf.dispatcher.apply`` only outside check mode, holding the pin path's lock.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_dispatcher
short_description: Roll an XDP tail-call dispatcher out as one desired state, tested, in generations
version_added: 1.1.0
description:
  - Takes an XDP dispatcher, the handler programs its jump table (a prog-array) tail-calls, and the interfaces
    it runs on as one desired state, and plans loading, wiring and attaching together, so that check mode
    reports exactly what the real run does.
  - "B(Generations): a change loads the new programs beside the live ones in a generation directory
    C(<pin_path>/gen/<N>/) (programs in C(progs/), the generation's own jump table in C(maps/), a record pinned
    last), wires the new jump table, runs the packet tests, and only then switches every interface in one atomic
    step each (netlink replace with the expected old program, or C(BPF_LINK_UPDATE) for hooks owned by a bpf_link).
    Every packet sees either the old dispatcher with the old handlers or the new one with the new handlers."
  - Maps other than prog-arrays are shared by every generation at C(<pin_path>/maps/<name>), so counters survive
    every upgrade and rollback.
  - "B(Automatic rollback): if anything fails after the first live change (an interface refuses the program, a
    check after going live fails), every interface already switched is swapped back atomically to the program it
    ran, the new generation is removed, and the task fails saying what failed and what was rolled back."
  - The previous generation stays loaded and pinned; O(state=previous) switches back to it. Older generations are
    pruned (O(keep_generations)).
  - "B(Idempotent): when the live generation holds the object's programs (compared by kernel tag, computed offline),
    its jump table holds exactly O(handlers), and every interface runs its dispatcher in the requested mode, nothing
    changes. An added interface only gets the live dispatcher attached; an interface removed from O(interfaces) is
    detached if this rollout attached it (its record under C(<pin_path>/attached/)), never anything else."
  - "B(Packet tests) (O(tests)) run with C(BPF_PROG_TEST_RUN) on the managed host before anything goes live, against
    a private test instance of the object: the dispatcher wired to the handlers through a jump table of its own,
    with scratch copies of the shared maps. The live maps are only read, so live counters never move. A failing
    test fails the task with the frame, the verdict got and the one expected, and the host stays as it was. Tests
    also run in check mode."
  - A host rolled out by version 1 of this collection (programs at C(<pin_path>/<name>), maps at
    C(<pin_path>/maps/<name>)) is adopted as generation 0 without touching what runs, and then upgraded like any other.
  - Tasks on one host that use the same O(pin_path) take turns (an exclusive C(flock) on it).
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  src:
    description:
      - A Whistler source file or a compiled BPF object on the controller. A relative path is searched like
        M(ansible.builtin.template) searches (the role's or play's C(files) directories first).
      - A source is compiled on the controller, once for all hosts, forks and later runs (the cache of
        M(whistler.xdp.xdp_compile)); the object is shipped into
        Ansible's temporary directory on the host (in check mode too) and removed after the task.
      - Mutually exclusive with O(object). One of them is required with O(state=present).
    type: str
  object:
    description:
      - Path of a compiled BPF object already on the managed host, instead of O(src).
    type: path
  pin_path:
    description:
      - The rollout's bpffs directory, for example C(/sys/fs/bpf/dispatch). A directory of its own below the bpffs
        mount; names may not contain C(.).
    type: path
    required: true
  dispatcher:
    description:
      - Name of the program attached to the interfaces. Required with O(state=present).
      - With O(state=previous) it defaults to the dispatcher the previous generation recorded.
    type: str
  jump_table:
    description:
      - Name of the prog-array map the dispatcher tail-calls through. Required with O(state=present).
    type: str
  handlers:
    description:
      - Jump-table slot -> handler program name. Slots are plain integers (decimal or C(0x) hex); slots not
        listed stay empty.
    type: dict
    default: {}
  interfaces:
    description:
      - Interfaces the dispatcher runs on. Empty loads, wires and tests the generation without attaching it.
      - An interface that is no longer listed is detached if this rollout attached it.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Interface name.
        type: str
        required: true
      netns:
        description: Network namespace holding the interface, a name under C(/run/netns) or a path to a namespace file.
        type: str
      mode:
        description:
          - XDP mode. V(auto) lets the kernel pick (native when the driver supports XDP).
          - Changing the mode of an attached dispatcher needs a detach first, which this module never does on its
            own (packets would pass unfiltered meanwhile); the task fails instead.
        type: str
        choices: [auto, native, generic]
        default: auto
  state:
    description:
      - V(present) makes the object's dispatcher and handlers live on O(interfaces), in a new generation when they
        differ from every kept generation.
      - V(previous) switches back to the generation that was live before the current one (a second run is ok,
        not another step back). Fails when there is none. Packet tests do not run (there is no object).
      - V(absent) detaches the dispatcher from the rollout's interfaces (only where it runs one of this rollout's
        programs) and removes every generation, jump table, program, shared map, record and pin directory under
        O(pin_path), and O(object_dest). Running it again reports no change.
    type: str
    choices: [present, absent, previous]
    default: present
  tests:
    description:
      - Packet tests run before anything goes live. Each is a dict with C(name), C(frame), C(expect) and optionally
        C(counters).
      - C(frame) is hex bytes (spaces and C(:) between bytes allowed) or a description with optional layers
        C(eth) (C(src), C(dst), C(vlan) as an id or C([outer, inner]), C(type) without an IP layer), C(ipv4)
        (C(src), C(dst), C(ttl), C(tos), C(id), C(df), C(proto) without a transport layer) or C(ipv6) (C(src), C(dst),
        C(hop_limit), C(flow_label), C(next_header)), C(tcp) (C(sport), C(dport), C(flags) such as C([syn, ack]),
        C(seq), C(ack), C(window)), C(udp) (C(sport), C(dport)) or C(icmp) (C(type), C(code), C(id), C(seq)), and
        C(payload) (number of payload bytes). Checksums and lengths are filled in.
      - C(expect) is a verdict, V(XDP_PASS), V(XDP_DROP), V(XDP_TX), V(XDP_ABORTED) or V(XDP_REDIRECT).
      - C(counters) is a list of C({map, key, delta}), expected changes of integer map values (per-CPU values summed)
        during the test, measured on the test instance's scratch maps.
    type: list
    elements: dict
    default: []
  health:
    description:
      - Health checks after going live. When the run switches at least one interface to a dispatcher (a new
        generation, an added interface), the module watches the live dispatcher for O(health.window) seconds
        right after the switch; if a check fails, every interface goes back atomically to the program it ran
        (the automatic rollback), and the task fails with what was seen (run counts, counter values and deltas,
        the window). Counters live in the shared maps and are never reset.
      - A run that switches nothing (a rerun) does not run them; neither does check mode, which cannot watch a
        dispatcher that is not live yet (the result's C(health) says so).
      - Only with O(state=present).
    type: dict
    suboptions:
      window:
        description: Seconds to watch the live dispatcher (above 0, at most 600); traffic must flow meanwhile.
        type: float
        default: 5
      min_runs:
        description:
          - The live dispatcher must run at least this often during the window, by its run count from the
            kernel's program statistics (enabled with C(BPF_ENABLE_STATS) for the window only; the sysctl
            C(kernel.bpf_stats_enabled) is left alone). V(0) does not check runs.
        type: int
        default: 1
      counters:
        description:
          - "Conditions on counters in the shared maps, each C({map, key, min_delta, max_delta}): the integer value
            at C(key) (per-CPU values summed) grows by at least C(min_delta) and at most C(max_delta) during the
            window (give one or both). For example a drop counter that may grow by at most 10 in 5 seconds."
        type: list
        elements: dict
        default: []
  keep_generations:
    description:
      - How many complete generations stay pinned after a switch, counting the live one and the previous one.
        V(1) keeps only the live generation (then there is nothing for O(state=previous) to return to).
    type: int
    default: 2
  replace_incompatible_maps:
    description:
      - Re-create a shared map whose pinned definition is incompatible with the object's (its contents are lost),
        instead of failing. Jump tables are never shared, so this only concerns maps such as counters.
    type: bool
    default: false
  object_dest:
    description:
      - Keep a copy of the object at this path on the host (written atomically when it differs), for inspection
        with C(bpftool) or audits. V(state=absent) removes it.
    type: path
extends_documentation_fragment:
  - whistler.xdp._attributes
  - whistler.xdp._attributes.PLATFORM
  - whistler.xdp._attributes.REQUIREMENTS
  - whistler.xdp._attributes.ACTIONGROUP_XDP
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    support: full
    details:
      - The object is shipped and the packet tests run in check mode too; nothing is pinned, wired or attached.
      - Program ids of a new generation are null in check mode; their tags are predicted offline.
  diff_mode:
    support: full
    details:
      - The diff lists the generation, each program with its kernel tag, each jump-table slot with its handler's name,
        each interface with the program it runs and the mode, and the generations kept.
  idempotent:
    support: full
seealso:
  - module: whistler.xdp.xdp_compile
  - module: whistler.xdp.xdp_info
  - module: whistler.xdp.xdp_attach
notes:
  - Programs and maps of a generation use the shared maps pinned when the generation was made. A generation whose
    programs use a map that was re-created since (O(replace_incompatible_maps)) no longer matches, and a new one is made.
  - Program tags do not cover the frags flag or the attach type; the generation record does, so a change of either
    also makes a new generation.
"""

EXAMPLES = r"""
- name: Roll the dispatcher out, tested before it goes live
  whistler.xdp.xdp_dispatcher:
    src: tail-call-dispatch.lisp
    pin_path: /sys/fs/bpf/dispatch
    dispatcher: xdp_dispatch
    jump_table: jt
    handlers:
      6: tcp_handler
      17: udp_handler
    interfaces:
      - name: eth1
        mode: native
    tests:
      - name: UDP is counted and passes
        frame: {ipv4: {src: 192.0.2.1, dst: 192.0.2.2}, udp: {sport: 5000, dport: 53}, payload: 16}
        expect: XDP_PASS
        counters:
          - {map: proto_stats, key: 2, delta: 1}
      - name: a runt frame passes
        frame: "ffffffffffff 020000000001 0800"
        expect: XDP_PASS
  register: rollout

- name: Show what is live
  ansible.builtin.debug:
    msg: "generation {{ rollout.generation.live }}: {{ rollout.jump_table.slots }}"

- name: Roll back to the previous generation
  whistler.xdp.xdp_dispatcher:
    pin_path: /sys/fs/bpf/dispatch
    interfaces:
      - name: eth1
        mode: native
    state: previous

- name: Remove the rollout from the host
  whistler.xdp.xdp_dispatcher:
    pin_path: /sys/fs/bpf/dispatch
    interfaces:
      - name: eth1
    state: absent
"""

RETURN = r"""
pin_path:
  description: The rollout's bpffs directory.
  returned: always
  type: str
  sample: /sys/fs/bpf/dispatch
actions:
  description: What the run does (check mode) or did, in words; on failure, what it was going to do.
  returned: always
  type: list
  elements: str
  sample: ["load generation 2 beside the live one, wire its jump table, record it",
           "switch atomically eth1: xdp_dispatch (generation 1) -> xdp_dispatch (generation 2)"]
generation:
  description: The generation that is live after the run.
  returned: when O(state) is V(present) or V(previous)
  type: dict
  contains:
    live:
      description: Number of the live generation.
      type: int
      sample: 2
    before:
      description: Number of the generation live before the run (0 for an adopted version 1 layout), null on a fresh host.
      type: int
      sample: 1
    new:
      description: Whether the run loads a new generation.
      type: bool
    previous:
      description: The generation O(state=previous) would switch back to, null if none.
      type: int
      sample: 1
    pruned:
      description: Generations removed by the run.
      type: list
      elements: int
    path:
      description: Directory of the live generation.
      type: str
      sample: /sys/fs/bpf/dispatch/gen/2
programs:
  description: The live generation's programs, keyed by name.
  returned: when O(state) is V(present) or V(previous)
  type: dict
  sample: {"xdp_dispatch": {"id": 812, "tag": "3b185187f1855c4c", "previous_tag": "a1b2c3d4e5f60718",
                            "pin": "/sys/fs/bpf/dispatch/gen/2/progs/xdp_dispatch"}}
  contains:
    id:
      description: Program id; null in check mode for a program of a new generation.
      type: int
    tag:
      description: Kernel tag (predicted offline in check mode).
      type: str
    previous_tag:
      description: Tag of the program of that name that was live before the run, null if there was none.
      type: str
    pin:
      description: Pin path.
      type: str
jump_table:
  description: The live generation's jump table.
  returned: when O(state) is V(present) or V(previous)
  type: dict
  contains:
    name:
      description: Map name.
      type: str
    pin:
      description: Pin path of the generation's jump table.
      type: str
    slots:
      description: Slot -> program name.
      type: dict
      sample: {"6": "tcp_handler", "17": "udp_handler"}
interfaces:
  description: The requested interfaces and what the run does on each.
  returned: when O(state) is V(present) or V(previous)
  type: list
  elements: dict
  contains:
    name:
      description: Interface name.
      type: str
    netns:
      description: Network namespace, null for the host's.
      type: str
    where:
      description: The interface and namespace in words.
      type: str
    action:
      description: V(noop), V(attach) (onto an empty hook) or V(replace) (atomic switch).
      type: str
    mode:
      description: XDP mode the dispatcher runs in.
      type: str
    prog_id:
      description: Id of the dispatcher running there; null in check mode for a new generation.
      type: int
    previous:
      description: What ran there before the run.
      type: str
detached:
  description: Interfaces the dispatcher is taken off (no longer listed, or O(state=absent)).
  returned: always
  type: list
  elements: dict
tests:
  description: The packet tests and their outcome.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Test name.
      type: str
    frame:
      description: The frame, in hex.
      type: str
    verdict:
      description: Verdict the dispatcher returned.
      type: str
    expected:
      description: Verdict expected.
      type: str
    counters:
      description: Counter changes, each C({map, key, delta, expected}).
      type: list
      elements: dict
    passed:
      description: Whether the verdict and every counter change were as expected.
      type: bool
removed:
  description: Pins removed (to remove, in check mode).
  returned: when O(state=absent)
  type: list
  elements: str
health:
  description:
    - What the health checks saw, or why they did not run.
  returned: when O(health) is given
  type: dict
  contains:
    ran:
      description: Whether the checks ran (they run only after a switch, and never in check mode).
      type: bool
    passed:
      description: Whether every check held; null when they did not run.
      type: bool
    reason:
      description: Why the checks did not run.
      type: str
    window:
      description: The window asked for, in seconds.
      type: float
    elapsed:
      description: The window measured, in seconds.
      type: float
    generation:
      description: The generation that was watched.
      type: int
    dispatcher:
      description: C({name, id, runs, min_runs}) of the live dispatcher; C(runs) counted during the window.
      type: dict
    counters:
      description: Each counter condition with C(before), C(after), C(delta), C(min_delta), C(max_delta), C(passed).
      type: list
      elements: dict
    problems:
      description: What failed, in words.
      type: list
      elements: str
  sample: {"ran": true, "passed": false, "window": 5.0, "elapsed": 5.002, "generation": 2,
           "dispatcher": {"name": "xdp_dispatch", "id": 812, "runs": 0, "min_runs": 100},
           "counters": [], "problems": ["xdp_dispatch (program 812) ran 0 times, expected at least 100"]}
verifier_log:
  description: The kernel verifier's log, line by line, when it rejected a program.
  returned: failure
  type: list
  elements: str
"""

import hashlib  # noqa: E402  (Ansible modules import after the docs)
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._imports import check_requirements  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._module_base import loader_errors  # noqa: E402

# What only a run that tests, watches or changes something needs (dispatcher.testrun, .health, .apply) is
# imported where it is used: on a fleet most runs change nothing, and those imports would cost each of them
# about 45 ms of CPU (bench/fleet_speed.py).
try:
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.layout import Layout
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.plan import (
        Desired,
        Interface,
        make_plan,
        read_host,
    )
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.report import diff, result
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import ObjectFileError
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import read_object
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pins import locked
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import parse_slot
except ImportError:
    LOADER_IMPORT_ERROR = traceback.format_exc()
else:
    LOADER_IMPORT_ERROR = None

ARGUMENT_SPEC = dict(
    src=dict(type="str"),
    object=dict(type="path"),
    pin_path=dict(type="path", required=True),
    dispatcher=dict(type="str"),
    jump_table=dict(type="str"),
    handlers=dict(type="dict", default={}),
    interfaces=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        netns=dict(type="str"),
        mode=dict(type="str", default="auto", choices=["auto", "native", "generic"]),
    )),
    state=dict(type="str", default="present", choices=["present", "absent", "previous"]),
    tests=dict(type="list", elements="dict", default=[]),
    health=dict(type="dict", options=dict(
        window=dict(type="float", default=5),
        min_runs=dict(type="int", default=1),
        counters=dict(type="list", elements="dict", default=[]),
    )),
    keep_generations=dict(type="int", default=2),
    replace_incompatible_maps=dict(type="bool", default=False),
    object_dest=dict(type="path"),
)
MUTUALLY_EXCLUSIVE = [("src", "object")]


def desired_state(params):
    """The options as a ``Desired`` (the object read and hashed for state=present)."""
    spec = sha256 = None
    if params["state"] == "present":
        if not params["object"]:
            raise ValueError("state=present needs the object: src (through the action plugin) or object")
        try:
            spec = read_object(params["object"])
        except ObjectFileError as exc:
            raise ValueError(f"object {exc}") from exc
        with open(params["object"], "rb") as f:
            sha256 = hashlib.sha256(f.read()).hexdigest()
    handlers = {parse_slot(key, "handlers"): str(value) for key, value in params["handlers"].items()}
    interfaces = [Interface(i["name"], i["netns"], i["mode"]) for i in params["interfaces"]]
    return Desired(params["state"], params["pin_path"], params["dispatcher"], params["jump_table"], handlers, interfaces,
                   spec, sha256, params["keep_generations"], params["replace_incompatible_maps"], params["object_dest"])


def describe_failures(results):
    failed = [r for r in results if not r.passed]
    return "; ".join(r.failure() for r in failed)


CHECK_MODE_HEALTH = ("check mode: health checks watch the dispatcher after the switch, so they cannot run before it; "
                     "the real run runs them after switching and rolls back if they fail")
NOTHING_LIVE_HEALTH = "nothing went live on this run (no interface switched), so there was nothing new to watch"


def goes_live(plan) -> bool:
    return any(p.changed for p in plan.attach)


def not_run(reason: str) -> dict:
    """The ``health`` result of a run whose checks did not run, and why."""
    return dict(ran=False, passed=None, reason=reason)


def packet_tests(raw, desired):
    """The ``tests`` option checked against the object (none for state previous or absent)."""
    if desired.state != "present" or not raw:
        return []
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.testrun import parse_tests

    return parse_tests(raw, desired.spec)


def health_checks(raw, desired):
    """The ``health`` option checked against the object, the kernel's run statistics tried (None: no checks)."""
    if desired.state != "present" or not raw:
        return None
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.health import (
        parse_health,
        probe,
    )

    health = parse_health(raw, desired.spec)
    if health is not None and health.min_runs:
        probe()  # fails here, before anything changes, on a kernel that cannot count runs
    return health


def run_packet_tests(desired, layout, tests):
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.testrun import (
        Wiring,
        run_tests,
    )

    wiring = Wiring(desired.dispatcher, desired.jump_table, desired.handlers)
    shared = {m.name: layout.shared_map(m.name) for m in desired.spec.maps if m.name not in desired.arrays}
    return run_tests(desired.spec, wiring, tests, shared)


def run(module):
    params = module.params
    health_result = None
    with loader_errors(module):
        desired = desired_state(params)
        layout = Layout.checked(params["pin_path"])
        tests = packet_tests(params["tests"], desired)
        health = health_checks(params["health"], desired)
        plan = make_plan(desired, read_host(layout, desired))
        if params["health"] and health is None:
            health_result = not_run(f"state={desired.state} runs no health checks")
        elif health is not None:
            health_result = not_run(CHECK_MODE_HEALTH if module.check_mode and goes_live(plan) else NOTHING_LIVE_HEALTH)
        results = run_packet_tests(desired, layout, tests) if tests else []
        failures = describe_failures(results)
        if failures and health is not None:
            health_result = not_run("the packet tests failed, so nothing went live")
        if failures:
            module.fail_json(msg=f"packet tests failed, nothing went live: {failures}",
                             **dict(result(plan, None, results), changed=False, **_health(health_result)))
        outcome = None
        if plan.changed and not module.check_mode:
            from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.apply import (
                RolloutError,
                apply_absent,
                apply_plan,
            )
            from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.health import (
                HealthCheck,
            )

            with locked(layout.root):
                plan = make_plan(desired, read_host(layout, desired))
                check = HealthCheck(health) if health is not None and goes_live(plan) else None
                try:
                    outcome = apply_absent(plan) if desired.state == "absent" else apply_plan(plan, [check] if check else [])
                except RolloutError as exc:
                    if check is not None:  # what a failed check saw, or why it did not get to watch
                        health_result = check.observed or not_run(f"the rollout failed before the checks ended: "
                                                                  f"{exc.cause}")
                    # Put back completely, nothing changed; only what could not be undone is a change.
                    module.fail_json(msg=f"the rollout failed and the host was rolled back: {exc}",
                                     rolled_back=exc.undone, rollback_errors=exc.undo_errors,
                                     exception=traceback.format_exc(),
                                     **dict(result(plan, None, results), changed=bool(exc.undo_errors),
                                            **_health(health_result)))
                if check is not None:
                    health_result = check.observed
    for warning in (outcome.warnings if outcome is not None else plan.warnings):
        module.warn(warning)
    return dict(result(plan, outcome, results), **_health(health_result)), diff(plan, outcome)


def _health(health_result) -> dict:
    return {} if health_result is None else dict(health=health_result)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_if=[("state", "present", ("dispatcher", "jump_table"))],
        supports_check_mode=True,
    )
    if module.params["src"] is not None:
        module.fail_json(msg="src is compiled and shipped by the whistler.xdp.xdp_dispatcher action plugin; call the "
                             "module as a task, or give the object already on the host as object")
    check_requirements(module, LOADER_IMPORT_ERROR)
    outcome, changes = run(module)
    if module._diff:
        outcome["diff"] = changes
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
