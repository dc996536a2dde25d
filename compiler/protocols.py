"""The protocol library (reference §3): header accessors, protocol constants and the
``with-*`` / ``parse-*`` packet macros.

In: nothing. Out: ``ACCESSORS`` (accessor name -> ``Accessor``: offset, type and whether the
field is in network order), ``CONSTANTS`` (``+ETH-HDR-LEN+`` ...) and ``PRELUDE``, Whistler
source defining the packet macros and ``with-ringbuf`` with ``defmacro``; expansion loads it before the user's
file, so the library runs through the same macro machinery as user code.

Semantics kept from the reference: only the length check returns early (XDP_PASS or
TC_ACT_OK); an EtherType or protocol mismatch skips the body and yields 0; IPv4 options and
VLAN tags are not handled (L4 at offset 34).
"""

from __future__ import annotations

from .records import dataclass


@dataclass(frozen=True)
class Accessor:
    offset: int
    type: str  # "U8" .. "U64"
    net_order: bool = False  # wrap the load in ntohs/ntohl


def _fields(prefix: str, *rows) -> dict[str, Accessor]:
    return {f"{prefix}-{name}": Accessor(off, typ, net) for name, off, typ, net in rows}


ACCESSORS = {
    **_fields("ETH",
              ("DST-MAC-HI", 0, "U32", False), ("DST-MAC-LO", 4, "U16", False),
              ("SRC-MAC-HI", 6, "U32", False), ("SRC-MAC-LO", 10, "U16", False),
              ("TYPE", 12, "U16", True)),
    **_fields("IPV4",
              ("VER-IHL", 0, "U8", False), ("TOS", 1, "U8", False), ("TOTAL-LEN", 2, "U16", True),
              ("ID", 4, "U16", True), ("FRAG-OFF", 6, "U16", True), ("TTL", 8, "U8", False),
              ("PROTOCOL", 9, "U8", False), ("CHECKSUM", 10, "U16", False),
              ("SRC-ADDR", 12, "U32", False), ("DST-ADDR", 16, "U32", False)),
    **_fields("IPV6",
              ("VER-TC-FLOW", 0, "U32", True), ("PAYLOAD-LEN", 4, "U16", True),
              ("NEXTHDR", 6, "U8", False), ("HOP-LIMIT", 7, "U8", False),
              ("SRC-ADDR-HI", 8, "U64", False), ("SRC-ADDR-LO", 16, "U64", False),
              ("DST-ADDR-HI", 24, "U64", False), ("DST-ADDR-LO", 32, "U64", False)),
    **_fields("ICMP",
              ("TYPE", 0, "U8", False), ("CODE", 1, "U8", False), ("CHECKSUM", 2, "U16", False),
              ("REST", 4, "U32", False)),
    **_fields("TCP",
              ("SRC-PORT", 0, "U16", True), ("DST-PORT", 2, "U16", True), ("SEQ", 4, "U32", True),
              ("ACK-SEQ", 8, "U32", True), ("DATA-OFF", 12, "U8", False), ("FLAGS", 13, "U8", False),
              ("WINDOW", 14, "U16", True), ("CHECKSUM", 16, "U16", False), ("URGENT", 18, "U16", True)),
    **_fields("UDP",
              ("SRC-PORT", 0, "U16", True), ("DST-PORT", 2, "U16", True), ("LENGTH", 4, "U16", True),
              ("CHECKSUM", 6, "U16", False)),
}

CONSTANTS = {
    "+ETHERTYPE-IPV4+": 0x0800,
    "+ETHERTYPE-IPV6+": 0x86DD,
    "+ETHERTYPE-ARP+": 0x0806,
    "+ETHERTYPE-VLAN+": 0x8100,
    "+ETH-HDR-LEN+": 14,
    "+IPV4-HDR-LEN+": 20,
    "+IPV6-HDR-LEN+": 40,
    "+ICMP-HDR-LEN+": 8,
    "+TCP-HDR-LEN+": 20,
    "+UDP-HDR-LEN+": 8,
    "+IP-PROTO-ICMP+": 1,
    "+IP-PROTO-TCP+": 6,
    "+IP-PROTO-UDP+": 17,
    "+IP-PROTO-IPV6-ICMP+": 58,
    "+TCP-FIN+": 0x01,
    "+TCP-SYN+": 0x02,
    "+TCP-RST+": 0x04,
    "+TCP-PSH+": 0x08,
    "+TCP-ACK+": 0x10,
    "+TCP-URG+": 0x20,
}

PRELUDE_FILE = "<protocols>"

# The XDP and TC families differ only in where data/data-end come from and what the early
# return is, so each family is one line over shared %-macros.
PRELUDE = r"""
(defmacro %with-packet ((data data-end min-len) data-form end-form pass body)
  `(let ((,data u64 ,data-form) (,data-end u64 ,end-form))
     (if (> (+ ,data ,min-len) ,data-end) (return ,pass) (progn ,@body))))

(defmacro %with-ipv4 ((data data-end ip) packet-macro body)
  `(,packet-macro (,data ,data-end :min-len 34)
     (when (= (eth-type ,data) +ethertype-ipv4+)
       (let ((,ip u64 (+ ,data +eth-hdr-len+))) ,@body))))

(defmacro %with-l4 ((data data-end l4) min-len proto packet-macro body)
  (let ((ip (gensym "IP")))
    `(,packet-macro (,data ,data-end :min-len ,min-len)
       (when (= (eth-type ,data) +ethertype-ipv4+)
         (let ((,ip u64 (+ ,data +eth-hdr-len+)))
           (when (= (ipv4-protocol ,ip) ,proto)
             (let ((,l4 u64 (+ ,ip +ipv4-hdr-len+))) ,@body)))))))

(defmacro with-packet ((data data-end &key (min-len 0)) &body body)
  `(%with-packet (,data ,data-end ,min-len) (xdp-data) (xdp-data-end) XDP_PASS ,body))
(defmacro with-eth ((data data-end) &body body)
  `(with-packet (,data ,data-end :min-len 14) ,@body))
(defmacro with-ipv4 ((data data-end ip) &body body)
  `(%with-ipv4 (,data ,data-end ,ip) with-packet ,body))
(defmacro with-tcp ((data data-end tcp) &body body)
  `(%with-l4 (,data ,data-end ,tcp) 54 +ip-proto-tcp+ with-packet ,body))
(defmacro with-udp ((data data-end udp) &body body)
  `(%with-l4 (,data ,data-end ,udp) 42 +ip-proto-udp+ with-packet ,body))

(defmacro with-tc-packet ((data data-end &key (min-len 0)) &body body)
  `(%with-packet (,data ,data-end ,min-len) (tc-data) (tc-data-end) TC_ACT_OK ,body))
(defmacro with-tc-eth ((data data-end) &body body)
  `(with-tc-packet (,data ,data-end :min-len 14) ,@body))
(defmacro with-tc-ipv4 ((data data-end ip) &body body)
  `(%with-ipv4 (,data ,data-end ,ip) with-tc-packet ,body))
(defmacro with-tc-tcp ((data data-end tcp) &body body)
  `(%with-l4 (,data ,data-end ,tcp) 54 +ip-proto-tcp+ with-tc-packet ,body))
(defmacro with-tc-udp ((data data-end udp) &body body)
  `(%with-l4 (,data ,data-end ,udp) 42 +ip-proto-udp+ with-tc-packet ,body))

(defmacro with-ringbuf ((var map size &key (flags 0)) &body body)
  `(let ((,var u64 (ringbuf-reserve ,map ,size ,flags)))
     (when ,var ,@body (ringbuf-submit ,var 0))))

(defmacro %parse (data data-end min-len proto result)
  (let ((d (gensym "D")) (de (gensym "DE")))
    `(let ((,d u64 ,data) (,de u64 ,data-end))
       (if (> (+ ,d ,min-len) ,de)
           0
           (if ,(if proto
                    `(and (= (eth-type ,d) +ethertype-ipv4+)
                          (= (ipv4-protocol (+ ,d +eth-hdr-len+)) ,proto))
                    `(= (eth-type ,d) +ethertype-ipv4+))
               (+ ,d ,result)
               0)))))

(defmacro parse-eth (data data-end)
  (let ((d (gensym "D")))
    `(let ((,d u64 ,data)) (if (> (+ ,d +eth-hdr-len+) ,data-end) 0 ,d))))
(defmacro parse-ipv4 (data data-end) `(%parse ,data ,data-end 34 nil +eth-hdr-len+))
(defmacro parse-tcp (data data-end) `(%parse ,data ,data-end 54 +ip-proto-tcp+ 34))
(defmacro parse-udp (data data-end) `(%parse ,data ,data-end 42 +ip-proto-udp+ 34))
"""
