;;;; tail-call-dispatch.lisp -- an XDP dispatcher that tail-calls one program per IP protocol.
;;;;
;;;; In: Ethernet frames on the interface the dispatcher is attached to.
;;;; Out: every frame passes (XDP_PASS); proto-stats counts what was seen:
;;;;   slot 0  IPv4 frames handed to the jump table (whether or not a handler is wired),
;;;;   slot 1  frames the TCP handler ran for,
;;;;   slot 2  frames the UDP handler ran for.
;;;;
;;;; Wire the jump table after loading: jt[6] -> tcp-handler, jt[17] -> udp-handler. An empty
;;;; slot makes the tail call fall through, so unknown protocols still pass.
;;;;
;;;; Each program has its own section. whistler.xdp's loader maps "xdp" and "xdp/NAME" to XDP;
;;;; libbpf 1.x recognises only "xdp" itself, so load with bpftool as
;;;; `bpftool prog loadall OBJ DIR type xdp pinmaps DIR/maps`.

(in-package #:whistler)

;;; Jump table: IPv4 protocol number -> handler program. 256 slots cover every protocol.
(defmap jt :type :prog-array
  :key-size 4 :value-size 4 :max-entries 256)

;;; Counters, indexed by the +stat-...+ constants below; u64 so they never wrap in practice.
(defmap proto-stats :type :array
  :key-size 4 :value-size 8 :max-entries 3)

(defconstant +stat-dispatched+ 0)
(defconstant +stat-tcp+ 1)
(defconstant +stat-udp+ 2)

;;; Entry point: attach this one to the interface.
(defprog xdp-dispatch (:type :xdp :section "xdp" :license "GPL")
  (let ((data     (xdp-data))
        (data-end (xdp-data-end)))
    ;; Ethernet (14) + a minimal IPv4 header (20): the verifier needs this bound before we
    ;; read the protocol byte; anything shorter is not ours to judge.
    (when (> (+ data (+ +eth-hdr-len+ +ipv4-hdr-len+)) data-end)
      (return XDP_PASS))
    ;; Untagged IPv4 only; VLAN-tagged, IPv6 and ARP frames pass uncounted.
    (when (/= (eth-type data) +ethertype-ipv4+)
      (return XDP_PASS))
    (let ((proto (ipv4-protocol (+ data +eth-hdr-len+))))
      (declare (type u32 proto))
      (incf (getmap proto-stats +stat-dispatched+))
      ;; Does not return when jt[proto] holds a program; falls through when the slot is empty.
      (tail-call jt proto)))
  XDP_PASS)

;;; Runs instead of the dispatcher's tail for TCP (jt[6]).
(defprog tcp-handler (:type :xdp :section "xdp/tcp" :license "GPL")
  (incf (getmap proto-stats +stat-tcp+))
  XDP_PASS)

;;; Runs instead of the dispatcher's tail for UDP (jt[17]).
(defprog udp-handler (:type :xdp :section "xdp/udp" :license "GPL")
  (incf (getmap proto-stats +stat-udp+))
  XDP_PASS)
