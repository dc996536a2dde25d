;;;; count-xdp.lisp -- count every packet in a one-slot array map; pass them all.
;;;; Benchmark twin: bench/c/count_xdp.c.

(in-package #:whistler)

(defmap pkt-count :type :array
  :key-size 4 :value-size 8 :max-entries 1)

(defprog count-packets (:type :xdp :section "xdp" :license "GPL")
  (incf (getmap pkt-count 0))
  XDP_PASS)
