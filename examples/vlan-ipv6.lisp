;;;; vlan-ipv6.lisp -- parse VLAN tags (802.1Q, and 802.1ad QinQ) and IPv6 with user-defined headers.
;;;;
;;;; In: Ethernet frames, untagged or with up to two VLAN tags (an outer 802.1ad tag, EtherType
;;;; 0x88a8, then an 802.1Q tag, 0x8100, or a single tag of either kind).
;;;; Out: XDP_DROP for IPv6 packets whose next header is marked in `v6-deny` (say 43, routing
;;;; headers), XDP_PASS for everything else. vlan-packets counts frames per innermost VLAN id
;;;; (0 for untagged frames) and v6-next counts IPv6 packets per next-header value.
;;;;
;;;;   bpftool map update name v6_deny key 43 0 0 0 value 1      # drop IPv6 routing headers

(in-package #:whistler)

;;; A VLAN tag follows the EtherType it replaces: TCI (priority 3 bits, DEI 1, id 12), then the
;;; EtherType of what follows.
(defheader vlan
  (tci        :offset 0 :type u16 :net-order t)
  (inner-type :offset 2 :type u16 :net-order t))

(defconstant +ethertype-qinq+ #x88a8)
(defconstant +vlan-hdr-len+ 4)
(defconstant +vlan-id-mask+ #xfff)

(defmap vlan-packets :type :array :key-size 4 :value-size 8 :max-entries 4096)
(defmap v6-next :type :array :key-size 4 :value-size 8 :max-entries 256)
(defmap v6-deny :type :array :key-size 4 :value-size 1 :max-entries 256)

;;; If TYPE says a VLAN tag of one of KINDS follows at L3, take its id and inner EtherType
;;; and step over it.
(defmacro pop-vlan-tag (type l3 vid end &rest kinds)
  `(when (and (or ,@(mapcar (lambda (k) `(= ,type ,k)) kinds))
              (<= (+ ,l3 +vlan-hdr-len+) ,end))
     (setf ,vid  (logand (vlan-tci ,l3) +vlan-id-mask+)
           ,type (vlan-inner-type ,l3)
           ,l3   (+ ,l3 +vlan-hdr-len+))))

(defprog vlan-ipv6 ()
  (with-eth (data data-end)
    (let ((type (eth-type data))
          (l3   (+ data +eth-hdr-len+))
          (vid  0))
      (pop-vlan-tag type l3 vid data-end +ethertype-qinq+ +ethertype-vlan+)   ; outer tag
      (pop-vlan-tag type l3 vid data-end +ethertype-vlan+)                    ; inner 802.1Q tag
      (incf (getmap vlan-packets vid))
      (when (and (= type +ethertype-ipv6+) (<= (+ l3 +ipv6-hdr-len+) data-end))
        (let ((next (ipv6-nexthdr l3)))
          (incf (getmap v6-next next))
          (when (getmap v6-deny next)
            (return XDP_DROP))))))
  XDP_PASS)
