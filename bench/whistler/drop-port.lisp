;;;; drop-port.lisp -- drop IPv4 TCP segments to one port, count them; pass everything else.
;;;; Benchmark twin: bench/c/drop_port.c.

(in-package #:whistler)

(defconstant +blocked-port+ 9999)

(defmap drop-count :type :array
  :key-size 4 :value-size 8 :max-entries 1)

(defprog drop-port (:type :xdp :section "xdp" :license "GPL")
  (with-tcp (data data-end tcp)
    (when (= (tcp-dst-port tcp) +blocked-port+)
      (incf (getmap drop-count 0))
      (return XDP_DROP)))
  XDP_PASS)
