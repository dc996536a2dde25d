;;;; flow-stats.lisp -- per-flow counters in a map whose keys and values are structs.
;;;;
;;;; In: Ethernet frames. Out: every frame passes (XDP_PASS). Each IPv4 frame updates the entry
;;;; of its flow (source, destination, protocol and, for TCP and UDP, the ports) in the LRU
;;;; map `flows`: packets, bytes (whole frames), when the flow was first and last seen
;;;; (ktime_get_ns) and, for TCP, every flag seen so far. The least recently updated flows
;;;; make room for new ones.
;;;;
;;;; The map carries the struct types in its BTF, so `bpftool map dump name flows` prints
;;;; every entry field by field, e.g.
;;;;   {"key": {"src": 16777226, "dst": 33554442, "sport": 40000, "dport": 443, "proto": 6, ...},
;;;;    "value": {"packets": 3, "bytes": 198, "first_seen": ..., "last_seen": ..., "tcp_flags": 18, ...}}
;;;;
;;;; The counters are updated without atomics: two CPUs updating the same flow at once may
;;;; lose an increment, which a traffic sketch can afford.

(in-package #:whistler)

(defstruct flow-key
  (src   u32)               ; addresses as on the wire (network byte order)
  (dst   u32)
  (sport u16)               ; ports in host order; 0 for other protocols
  (dport u16)
  (proto u8)
  (pad   (array u8 3)))     ; explicit, so every key byte is defined

(defstruct flow
  (packets    u64)
  (bytes      u64)
  (first-seen u64)
  (last-seen  u64)
  (tcp-flags  u8)           ; OR of the flags of every TCP segment
  (pad        (array u8 7)))

(defmap flows :type :lru-hash :key-type flow-key :value-type flow :max-entries 4096)

(defprog flow-stats ()
  (with-packet (data data-end :min-len 38)          ; Ethernet + IPv4 + the L4 ports
    (when (= (eth-type data) +ethertype-ipv4+)
      (let* ((ip    (+ data +eth-hdr-len+))
             (l4    (+ ip +ipv4-hdr-len+))
             (proto (ipv4-protocol ip))
             (now   (ktime-get-ns))
             (size  (- data-end data))
             (key   (make-flow-key :src (ipv4-src-addr ip) :dst (ipv4-dst-addr ip) :proto proto)))
        (when (or (= proto +ip-proto-tcp+) (= proto +ip-proto-udp+))
          ;; TCP and UDP keep their ports at the same offsets
          (setf (flow-key-sport key) (tcp-src-port l4)
                (flow-key-dport key) (tcp-dst-port l4)))
        (let ((f (getmap flows key)))
          (if f
              (progn
                (incf (flow-packets f))
                (incf (flow-bytes f) size)
                (setf (flow-last-seen f) now))
              (setf (getmap flows key) (make-flow :packets 1 :bytes size :first-seen now :last-seen now))))
        (when (and (= proto +ip-proto-tcp+) (<= (+ l4 +tcp-hdr-len+) data-end))
          (let ((f (getmap flows key)))
            (when f
              (setf (flow-tcp-flags f) (logior (flow-tcp-flags f) (tcp-flags l4)))))))))
  XDP_PASS)
