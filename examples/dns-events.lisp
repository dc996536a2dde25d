;;;; dns-events.lisp -- report DNS queries to user space through a ring buffer.
;;;;
;;;; In: Ethernet frames. Out: every frame passes (XDP_PASS). Each IPv4/UDP datagram to port 53
;;;; that carries at least the first 4 bytes of a DNS header becomes one 12-byte dns-query
;;;; record in the `queries` ring buffer: who asked (address as on the wire, port in host
;;;; order), the DNS transaction id and flags (host order) and the UDP payload length.
;;;; dns-stats[0] counts records sent; when the ring is full the record is lost and
;;;; dns-stats[1] counts it instead.
;;;;
;;;; Read the records with libbpf's ring_buffer__poll (or mmap the map: a ring buffer's pages
;;;; are the records); `bpftool map dump name dns_stats` shows the counters.

(in-package #:whistler)

(defstruct dns-query
  (client-addr u32)    ; IPv4 source address, network byte order
  (client-port u16)    ; UDP source port
  (txid        u16)    ; DNS transaction id
  (length      u16)    ; UDP payload bytes
  (flags       u16))   ; DNS header flags (QR, opcode, RD ...)

;;; The first two fields of the DNS header (RFC 1035 4.1.1), read in host order.
(defheader dns
  (txid  :offset 0 :type u16 :net-order t)
  (flags :offset 2 :type u16 :net-order t))

(defmap queries :type :ringbuf :max-entries (* 64 1024))
(defmap dns-stats :type :array :key-size 4 :value-size 8 :max-entries 2)

(defconstant +stat-sent+ 0)
(defconstant +stat-lost+ 1)
(defconstant +dns-port+ 53)
(defconstant +dns-min-len+ 46)  ; Ethernet 14 + IPv4 20 + UDP 8 + txid and flags 4

(defprog dns-events ()
  (with-packet (data data-end :min-len +dns-min-len+)
    (when (and (= (eth-type data) +ethertype-ipv4+)
               (= (ipv4-protocol (+ data +eth-hdr-len+)) +ip-proto-udp+))
      (let* ((ip  (+ data +eth-hdr-len+))
             (udp (+ ip +ipv4-hdr-len+))
             (dns (+ udp +udp-hdr-len+)))
        (when (= (udp-dst-port udp) +dns-port+)
          (let ((q (ringbuf-reserve queries (sizeof dns-query))))
            (if q
                (progn
                  (setf (dns-query-client-addr q) (ipv4-src-addr ip)
                        (dns-query-client-port q) (udp-src-port udp)
                        (dns-query-txid q)        (dns-txid dns)
                        (dns-query-flags q)       (dns-flags dns)
                        (dns-query-length q)      (- (udp-length udp) +udp-hdr-len+))
                  (ringbuf-submit q)
                  (incf (getmap dns-stats +stat-sent+)))
                (incf (getmap dns-stats +stat-lost+))))))))
  XDP_PASS)
