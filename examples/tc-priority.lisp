;;;; tc-priority.lisp -- a TC classifier: traffic classes from DSCP and ports, and a block list.
;;;;
;;;; In: packets leaving (or entering) an interface, as a clsact filter sees them.
;;;; Out: TC_ACT_SHOT for IPv4 packets to a destination in `blocked`; TC_ACT_OK for the rest.
;;;; Every IPv4 packet that is not dropped gets a class, written to skb->priority (so an
;;;; mqprio/prio qdisc can queue it) and to skb->mark as #x100 + class:
;;;;   2 realtime     DSCP EF (46)
;;;;   1 interactive  TCP to or from port 22 (ssh)
;;;;   0 bulk         everything else
;;;; class-stats counts packets per class, and drops in slot 3. Non-IPv4 packets pass untouched.
;;;;
;;;;   tc qdisc add dev eth0 clsact
;;;;   tc filter add dev eth0 egress bpf direct-action obj tc-priority.bpf.o sec tc
;;;;   bpftool map update name blocked key 10 0 0 9 value 1     # block 10.0.0.9

(in-package #:whistler)

(defmap blocked :type :hash :key-size 4 :value-size 1 :max-entries 1024)  ; IPv4 address as on the wire
(defmap class-stats :type :array :key-size 4 :value-size 8 :max-entries 4)

(defconstant +class-bulk+ 0)
(defconstant +class-interactive+ 1)
(defconstant +class-realtime+ 2)
(defconstant +stat-dropped+ 3)
(defconstant +dscp-ef+ 46)
(defconstant +ssh-port+ 22)
(defconstant +mark-base+ #x100)

(defprog tc-priority (:type :tc)
  (with-tc-ipv4 (data data-end ip)
    (when (map-lookup blocked (ipv4-dst-addr ip))
      (incf (getmap class-stats +stat-dropped+))
      (return TC_ACT_SHOT))
    (let* ((l4    (+ ip +ipv4-hdr-len+))
           (ssh   (and (= (ipv4-protocol ip) +ip-proto-tcp+)
                       (<= (+ l4 4) data-end)
                       (or (= (tcp-dst-port l4) +ssh-port+) (= (tcp-src-port l4) +ssh-port+))))
           (class (cond ((= (>> (ipv4-tos ip) 2) +dscp-ef+) +class-realtime+)
                        (ssh +class-interactive+)
                        (t +class-bulk+))))
      (setf (ctx priority) class
            (ctx mark) (+ +mark-base+ class))
      (incf (getmap class-stats class))))
  TC_ACT_OK)
