;;;; ipv4-csum.lisp -- check the IPv4 header checksum (RFC 1071: the one's complement sum of the
;;;; header's ten 16-bit words is #xffff) in a loop, count good and bad headers and drop the
;;;; bad ones. Benchmark twin: bench/c/ipv4_csum.c.

(in-package #:whistler)

(defmap csum-stats :type :array :key-size 4 :value-size 8 :max-entries 2)  ; 0: good, 1: bad

(defprog ipv4-csum (:type :xdp :section "xdp" :license "GPL")
  (with-ipv4 (data data-end ip)
    (let ((sum 0))
      (dotimes (i 10)
        (setf sum (+ sum (load u16 (+ ip (* 2 i)) 0))))
      (setf sum (+ (logand sum #xffff) (>> sum 16)))
      (setf sum (+ (logand sum #xffff) (>> sum 16)))
      (if (= sum #xffff)
          (incf (getmap csum-stats 0))
          (progn
            (incf (getmap csum-stats 1))
            (return XDP_DROP)))))
  XDP_PASS)
