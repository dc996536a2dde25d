;;;; sum-counters.lisp -- count each packet by its length modulo 4, then add up the four
;;;; counters in a loop of map lookups and publish the total (after the original Whistler's
;;;; "map lookups inside a loop" test). Benchmark twin: bench/c/sum_counters.c.

(in-package #:whistler)

(defmap counters :type :array :key-size 4 :value-size 8 :max-entries 4)
(defmap totals :type :array :key-size 4 :value-size 8 :max-entries 1)

(defprog sum-counters (:type :xdp :section "xdp" :license "GPL")
  (incf (getmap counters (logand (- (xdp-data-end) (xdp-data)) 3)))
  (let ((total 0))
    (dotimes (i 4)
      (let ((v (getmap counters i)))
        (when v
          (setf total (+ total v)))))
    (setf (getmap totals 0) total))
  XDP_PASS)
